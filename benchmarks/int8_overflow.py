"""Does ONNX Runtime compute the CPU-form INT8 file as its Q/DQ arithmetic says, on this CPU?

    python benchmarks/int8_overflow.py PIPELINE_FOLDER [--images 2000]

PIPELINE_FOLDER is a `wrn-deploy pipeline` output (its model.onnx and the cpu target's cached
ranges). The FP32 export is quantized to the cpu form twice from the same ranges: weights within
+-127 (wrn-deploy before 0.5) and within +-64 (ORT's reduce_range, the cpu form now). Each file
runs twice on the test images: with ONNX Runtime's default optimisation (QLinearConv: integer
kernels) and with optimisation off (each DequantizeLinear feeds a float Conv, so the sums are
exact). On a CPU without VNNI the integer kernels add u8 x s8 pairs in 16 bits, which 255 x 127 x 2
overflows; the two runs of the +-127 file then differ, and those of the +-64 file do not.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from common import machine_report  # noqa: E402
from wrn_deploy.card import read_card  # noqa: E402
from wrn_deploy.data.load import for_card  # noqa: E402
from wrn_deploy.quant import qdq  # noqa: E402

LEVELS = {"integer kernels": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
          "float Q/DQ": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}


def logits(path: Path, level, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.log_severity_level = 3  # the unoptimised graph warns about every DequantizeLinear
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 250]})[0] for i in range(0, len(x), 250)])


def cpu_form(fp32: Path, ranges: Path, out: Path, full_range: bool) -> Path:
    options = qdq._options
    if full_range:  # the form before weights were held within +-64
        qdq._options = lambda spec: {**options(spec), "reduce_range": False}
    try:
        qdq.quantize(fp32, out, qdq.QuantSpec(target="cpu"), ranges)
    finally:
        qdq._options = options
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    fp32 = args.folder / "model.onnx"
    ranges = next(args.folder.glob("calibration/*-cpu-*/ranges.json"), None)
    if not fp32.exists() or ranges is None:
        raise SystemExit(f"{args.folder} has no model.onnx or cpu-target ranges (run wrn-deploy pipeline first)")
    test = for_card(read_card(fp32), "test").first(args.images)
    x, y = test.images(), np.asarray(test.labels)
    ref = logits(fp32, LEVELS["integer kernels"], x)
    print(machine_report())
    print(f"{fp32} on {len(x)} test images; FP32 top-1 {100 * (ref.argmax(1) == y).mean():.2f}%")
    print("| weights | ONNX Runtime runs it as | top-1 | agreement with FP32 | mean abs logit diff |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, full in (("+-127", True), ("+-64", False)):
            path = cpu_form(fp32, ranges, Path(tmp) / f"{full}.onnx", full)
            for how, level in LEVELS.items():
                out = logits(path, level, x)
                print(f"| {label} | {how} | {100 * (out.argmax(1) == y).mean():.2f}% | "
                      f"{100 * (out.argmax(1) == ref.argmax(1)).mean():.2f}% | {np.abs(out - ref).mean():.4f} |")


if __name__ == "__main__":
    main()
