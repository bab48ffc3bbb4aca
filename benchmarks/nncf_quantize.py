"""NNCF's default INT8 quantization of a wrn-deploy FP32 export, on the images ``wrn-deploy quantize``
calibrates on (the same selection and preprocessing), for a comparison of the two:

    python benchmarks/nncf_quantize.py FP32.onnx OUT.onnx --data-dir D --calib-size N [--manifest M]

``--manifest``: a calibration manifest of a ``wrn-deploy quantize`` run; the images must be the ones
it names. ``benchmarks/step_costs.py nncf`` times this script beside ``wrn-deploy quantize``.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import calibration_images, nncf_quantize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fp32")
    ap.add_argument("out")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--calib-size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--manifest")
    args = ap.parse_args()
    calib = calibration_images(args.fp32, args.data_dir, args.calib_size, args.seed, args.manifest)
    print(f"NNCF on {len(calib)} images: {nncf_quantize(args.fp32, args.out, calib):.1f} s")


if __name__ == "__main__":
    main()
