"""ONNX Runtime CPU throughput of each INT8 form against FP32, ratios measured in one run.

    python benchmarks/int8_speed.py [--archs wrn-16-4,wrn-28-10] [--batch 64] [--threads 2]

For each architecture: a random-weight model (BatchNorm statistics randomised) is exported to FP32
ONNX, calibrated (min-max on 64 synthetic images; speed does not depend on the ranges), and
quantized to the TensorRT form in both placements (fusion: Conv inputs and residual Add inputs;
conv: Conv/Gemm inputs; rest FP32 or FP16), the CPU form (U8S8, every operator) and, where
ModelOpt runs (WRN_DEPLOY_MODELOPT_PYTHON), ModelOpt's int8 form ("max" calibration).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import machine_report  # noqa: E402
from tests.export.conftest import randomize_batchnorm  # noqa: E402
from timing import time_call  # noqa: E402
from wrn_deploy.arch import create_model  # noqa: E402
from wrn_deploy.arch.normalize import Normalized  # noqa: E402
from wrn_deploy.data.synthetic import make_synthetic  # noqa: E402
from wrn_deploy.export.onnx_export import export_onnx  # noqa: E402
from wrn_deploy.export.prepare import prepare_for_export  # noqa: E402
from wrn_deploy.runners.ort_runner import OrtRunner  # noqa: E402
from wrn_deploy.quant import qdq  # noqa: E402
from wrn_deploy.quant.collect import tensor_chunks  # noqa: E402

FORMS = {"INT8 tensorrt fusion (rest fp32)": qdq.QuantSpec("tensorrt", "minmax", rest="fp32"),
         "INT8 tensorrt fusion (rest fp16)": qdq.QuantSpec("tensorrt", "minmax", rest="fp16"),
         "INT8 tensorrt conv (rest fp32)": qdq.QuantSpec("tensorrt", "minmax", rest="fp32", placement="conv"),
         "INT8 tensorrt conv (rest fp16)": qdq.QuantSpec("tensorrt", "minmax", rest="fp16", placement="conv"),
         "INT8 cpu (U8S8)": qdq.QuantSpec("cpu", "minmax")}
# With WRN_DEPLOY_MODELOPT_PYTHON set (or ModelOpt importable here), ModelOpt's form is timed too.
MODELOPT_FORMS = {"INT8 modelopt (rest fp32)": qdq.QuantSpec("tensorrt", "minmax", rest="fp32", quantizer="modelopt"),
                  "INT8 modelopt (rest fp16)": qdq.QuantSpec("tensorrt", "minmax", rest="fp16", quantizer="modelopt")}


def models(arch: str, folder: Path, forms: tuple | None = None) -> dict:
    """FP32 and INT8 ONNX files of a random-weight ``arch``: every form, or the ``forms`` named."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    net = Normalized(prepare_for_export(randomize_batchnorm(create_model(arch, 10)))[0], (0.5,) * 3, (0.25,) * 3)
    export_onnx(net.eval(), folder / "fp32.onnx", 32, None, 18)
    quant_pre_process(str(folder / "fp32.onnx"), str(folder / "pre.onnx"), skip_optimization=True,
                      skip_symbolic_shape=True)
    images, _ = make_synthetic(64, 0)
    paths = {"FP32": folder / "fp32.onnx"}
    if forms is not None:
        return {**paths, **_quantized(folder, {f: FORMS[f] for f in forms}, images)}
    forms = dict(FORMS)
    try:
        from wrn_deploy.quant.producers import modelopt_python

        modelopt_python()
        forms.update(MODELOPT_FORMS)
    except Exception:  # noqa: BLE001 - no ModelOpt here: its rows are left out
        pass
    paths.update(_quantized(folder, forms, images))
    paths["S8S8 + output Q/DQ (diagnostic)"] = _s8s8_with_output_qdq(folder)
    return paths


def _quantized(folder: Path, forms: dict, images) -> dict:
    paths = {}
    for name, spec in forms.items():
        ranges = folder / f"{spec.target}-{spec.layout}.ranges.json"
        paths[name] = folder / f"{spec.quantizer}-{spec.target}-{spec.layout}-{spec.rest}.onnx"
        if spec.quantizer == "modelopt":
            from wrn_deploy.quant.producers import ModelOptProducer

            producer = ModelOptProducer(spec, folder)
            producer.calibrate(folder / "pre.onnx", tensor_chunks(images.float() / 255), ranges)
            producer.quantize(folder / "pre.onnx", paths[name], ranges)
            continue
        if not ranges.exists():
            qdq.calibrate(folder / "pre.onnx", tensor_chunks(images.float() / 255), spec, ranges)
        qdq.quantize(folder / "pre.onnx", paths[name], spec, ranges)
    return paths


def _s8s8_with_output_qdq(folder: Path) -> Path:
    """The TensorRT form plus Q/DQ on Conv/Gemm outputs: what ONNX Runtime's CPU kernels need to fuse
    DQ-Conv-Q into one QLinearConv. Shows why the TensorRT form itself is not fast in ORT."""
    from onnxruntime.quantization import quantize_static

    spec = FORMS["INT8 tensorrt conv (rest fp32)"]
    opts = qdq._options(spec)
    opts["extra_options"] = {k: v for k, v in opts["extra_options"].items()
                             if k != "OpTypesToExcludeOutputQuantization"}
    out = folder / "s8s8-output-qdq.onnx"
    quantize_static(str(folder / "pre.onnx"), str(out), None,
                    calibration_cache_path=str(folder / f"{spec.target}-{spec.layout}.ranges.json"), **opts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="wrn-16-4,wrn-28-10")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=5.0)
    args = ap.parse_args()
    print(machine_report())
    print(f"ONNX Runtime CPU, batch {args.batch}, {args.threads} threads; images/s and ratio to FP32")
    x = torch.rand(args.batch, 3, 32, 32)
    for arch in args.archs.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            rows = {}
            for name, path in models(arch, Path(tmp)).items():
                with OrtRunner(path, threads=args.threads) as runner:
                    rows[name] = args.batch / time_call(lambda: runner.infer(x), args.budget)
        print(f"\n{arch}")
        for name, ips in rows.items():
            print(f"  {name:34} {ips:9.1f} images/s  {ips / rows['FP32']:5.2f}x")


if __name__ == "__main__":
    main()
