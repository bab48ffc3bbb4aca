"""How much of the FP32 model's answers each calibration method keeps, per INT8 form.

    python benchmarks/calib_methods.py FP32.onnx --data-dir D [--calib-size 512] [--images 1000]
        [--targets tensorrt,cpu,openvino] [--methods percentile,image-percentile,minmax]

FP32.onnx is a `wrn-deploy export` (or a pipeline's model.onnx) and D the data it was trained on.
For each form and method the script calibrates on the images `wrn-deploy quantize` would choose
(the held-out part of the training split), writes the Q/DQ model without the guard (nothing is
kept float, so the methods are compared as they are), and scores it against the FP32 ONNX on the
first N test images: INT8 top-1, its drop, and agreement (the share of images whose top-1 answer
INT8 and FP32 share; eval's INT8 gate asks for 95%). The tensorrt form runs here with its rest in
FP32 and FP16 as ONNX Runtime computes them (not TensorRT); the openvino form runs in OpenVINO
where it is installed, as the guard runs it.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from common import calibration_images, machine_report  # noqa: E402
from wrn_deploy.card import read_card  # noqa: E402
from wrn_deploy.data.load import for_card  # noqa: E402
from wrn_deploy.limits import CALIB_METHODS  # noqa: E402
from wrn_deploy.parity.stats import paired  # noqa: E402
from wrn_deploy.quant import collect, qdq  # noqa: E402
from wrn_deploy.quant.decoded import uint8_images  # noqa: E402
from wrn_deploy.quant.guard import logits, runtime_for  # noqa: E402

FORMS = {"tensorrt": [("tensorrt", "fp32"), ("tensorrt", "fp16")], "cpu": [("cpu", "fp32")],
         "openvino": [("openvino", "fp32")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fp32", type=Path)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--calib-size", type=int, default=512)
    ap.add_argument("--images", type=int, default=1000, help="test images scored")
    ap.add_argument("--targets", default="tensorrt,cpu,openvino")
    ap.add_argument("--methods", default="percentile,image-percentile,minmax")
    a = ap.parse_args()
    methods = a.methods.split(",")
    if not set(methods) <= set(CALIB_METHODS) or not set(a.targets.split(",")) <= set(FORMS):
        raise SystemExit(f"methods are {', '.join(CALIB_METHODS)}; targets {', '.join(FORMS)}")

    print(machine_report())
    test = for_card(read_card(a.fp32), "test", data_dir=a.data_dir).first(a.images)
    x, y = uint8_images(test), np.asarray(test.labels)  # as the guard scores them
    ref = logits(a.fp32, x)
    calib = calibration_images(a.fp32, a.data_dir, a.calib_size)
    print(f"model: {a.fp32.name}; {len(calib)} calibration images; {len(y)} test images; "
          f"FP32 top-1 {100 * (ref.argmax(1) == y).mean():.2f}%\n")
    print("| form | method | calibration s | INT8 top-1 | drop (pts) | agreement |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = Path(tmp) / "pre.onnx"  # as quantize prepares it
        quant_pre_process(str(a.fp32), str(pre), skip_optimization=True, skip_symbolic_shape=True)
        for target, rest in (f for t in a.targets.split(",") for f in FORMS[t]):
            for method in methods:
                spec = qdq.QuantSpec(target=target, method=method, rest=rest)
                ranges, out = Path(tmp) / f"{target}-{method}.json", Path(tmp) / "int8.onnx"
                seconds = "(same)"  # the ranges do not depend on the rest's precision
                if not ranges.exists():
                    t0 = time.perf_counter()
                    qdq.calibrate(pre, collect.tensor_chunks(calib), spec, ranges)
                    seconds = f"{time.perf_counter() - t0:.1f}"
                qdq.quantize(pre, out, spec, ranges)
                s = paired(ref, logits(out, x, runtime_for(target)), y)
                form = f"{target}, rest {rest}" if target == "tensorrt" else target
                print(f"| {form} | {method} | {seconds} | {s.cand_top1:.2f}% | {-s.diff + 0.0:+.2f} | {s.agreement:.2f}% |",
                      flush=True)


if __name__ == "__main__":
    main()
