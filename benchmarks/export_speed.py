"""CPU inference speed of the exported ONNX (FP32 and FP16, ONNX Runtime) against PyTorch eager
(NCHW and channels_last), all in one run, for WRN-16-4 and WRN-28-10.

    python benchmarks/export_speed.py [--archs wrn-16-4,wrn-28-10] [--batch 32] [--budget 4]

Models have random weights (speed does not depend on them); the BatchNorm statistics are
randomised so folding has real work to do.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import machine_report  # noqa: E402
from tests.export.conftest import randomize_batchnorm  # noqa: E402
from timing import time_call  # noqa: E402
from wrn_deploy.arch import create_model  # noqa: E402
from wrn_deploy.arch.normalize import Normalized  # noqa: E402
from wrn_deploy.export.fp16 import to_fp16  # noqa: E402
from wrn_deploy.export.onnx_export import export_onnx  # noqa: E402
from wrn_deploy.export.prepare import prepare_for_export  # noqa: E402
from wrn_deploy.runners.ort_runner import OrtRunner  # noqa: E402

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def candidates(arch: str, folder: Path) -> dict:
    model = randomize_batchnorm(create_model(arch, 10, dropout=0.3))
    eager = Normalized(model, MEAN, STD).eval()
    prepared, _ = prepare_for_export(model)
    net = Normalized(prepared, MEAN, STD).eval()
    export_onnx(net, folder / "fp32.onnx", 32, None, 18)
    export_onnx(to_fp16(net)[0], folder / "fp16.onnx", 32, None, 18)
    cl = Normalized(create_model(arch, 10), MEAN, STD).eval()
    cl.load_state_dict(eager.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    o32, o16 = OrtRunner(folder / "fp32.onnx"), OrtRunner(folder / "fp16.onnx")
    o32.activate(), o16.activate()

    def torch_fn(m, layout=torch.contiguous_format):
        def run(x):
            with torch.inference_mode():
                m(torch.from_numpy(x).contiguous(memory_format=layout))
        return run

    return {"torch eager NCHW": torch_fn(eager), "torch eager channels_last": torch_fn(cl, torch.channels_last),
            "onnxruntime FP32": lambda x: o32.infer(torch.from_numpy(x)),
            "onnxruntime FP16": lambda x: o16.infer(torch.from_numpy(x))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="wrn-16-4,wrn-28-10")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--budget", type=float, default=4.0, help="seconds of timing per measurement")
    args = ap.parse_args()
    print(machine_report())
    print(f"latency: batch 1 (median ms); throughput: batch {args.batch} (images/s); ratio vs torch eager NCHW")
    for arch in args.archs.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            runs = candidates(arch, Path(tmp))
            one = np.random.rand(1, 3, 32, 32).astype(np.float32)
            many = np.random.rand(args.batch, 3, 32, 32).astype(np.float32)
            rows = {name: (time_call(lambda: fn(one), args.budget), time_call(lambda: fn(many), args.budget))
                    for name, fn in runs.items()}
        base_lat, base_thr = rows["torch eager NCHW"]
        print(f"\n{arch}")
        print(f"  {'runner':28} {'latency ms':>11} {'x':>6} {'images/s':>10} {'x':>6}")
        for name, (lat, thr) in rows.items():
            print(f"  {name:28} {lat * 1e3:11.2f} {base_lat / lat:6.2f} {args.batch / thr:10.1f} {base_thr / thr:6.2f}")


if __name__ == "__main__":
    main()
