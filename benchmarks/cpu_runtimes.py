"""CPU runtimes side by side: ONNX Runtime FP32/INT8, OpenVINO FP32/BF16/INT8 (wrn-deploy's
``--target openvino`` form) and Intel NNCF's INT8, with speed and accuracy against FP32.

    python benchmarks/cpu_runtimes.py --data-dir D [--checkpoint CKPT ...] [--arch wrn-16-4 ...]
                                      [--batches 1,64] [--rounds 3] [--quick]

D holds CIFAR-10 as class folders (``train/<class>/*``, ``test/<class>/*``; see
/work/shared/data/cifar10/README.md for where such a folder comes from here).

- A ``--checkpoint`` (trained) is exported with ``wrn-deploy export`` and quantized with
  ``wrn-deploy quantize`` for ``--target cpu`` and ``--target openvino``: held-out calibration
  images, manifest, accuracy guard. NNCF quantizes the same FP32 file on the same calibration
  images (the selection ``quantize`` made, read through ``calibset.choose``), with its defaults.
- An ``--arch`` is a random-weight network (BatchNorm statistics randomised), for speed: the same
  forms are made from the first ``--calib-size`` training images, without a guard. Its accuracy
  columns compare near-random logits and say little.

Speed: images/s at each batch size, the median of ``--rounds`` interleaved rounds (each round times
every row once, so a change of load lands on every row alike). ONNX Runtime runs with the runner's
defaults (its thread count, ``limits.ORT_SPIN``), OpenVINO with one stream, the LATENCY hint and
every CPU as threads. Accuracy: the first ``--images`` test images, each row against ONNX Runtime
FP32 (equal to PyTorch FP32 to 1e-6): top-1 agreement, top-1 difference, mean |logit difference|.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from common import calibration_images, machine_report, nncf_quantize
from timing import time_call


def _folder_images(folder: Path, limit: int) -> tuple:
    """The first ``limit`` images of a class-folder tree (classes sorted, files sorted, interleaved
    by class so any prefix is balanced), as float [0, 1] N x 3 x 32 x 32, and their labels."""
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [sorted((folder / c).iterdir()) for c in classes]
    picked = []
    for i in range(max(len(f) for f in files)):
        for label, f in enumerate(files):
            if i < len(f) and len(picked) < limit:
                picked.append((f[i], label))
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p, _ in picked])
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), np.array([lbl for _, lbl in picked])


def _trained_forms(ckpt: Path, folder: Path, data_dir: Path, calib_size: int) -> tuple:
    """FP32, --target cpu and --target openvino through the CLI, NNCF on the same calibration images."""
    import subprocess

    from wrn_deploy.card import read_card

    def cli(*args):
        subprocess.run([sys.executable, "-m", "wrn_deploy", *map(str, args)], check=True)

    fp32 = folder / "m.onnx"
    cli("export", ckpt, "-o", fp32, "--data-dir", data_dir, "--no-verify")
    paths = {"fp32": fp32}
    for target in ("cpu", "openvino"):
        paths[target] = folder / f"m.int8-{target}.onnx"
        cli("quantize", fp32, "-o", paths[target], "--target", target, "--data-dir", data_dir, "--calib-size",
            calib_size, "--calib-dir", folder / "calib", "--no-progress")
    calib = calibration_images(fp32, data_dir, calib_size)
    paths["nncf"] = folder / "m.int8-nncf.onnx"
    print(f"NNCF on the same {len(calib)} calibration images: {nncf_quantize(fp32, paths['nncf'], calib):.1f} s")
    return paths, read_card(fp32).arch


def _random_forms(arch: str, folder: Path, calib: torch.Tensor) -> dict:
    from int8_speed import models

    from wrn_deploy.quant import qdq
    from wrn_deploy.quant.collect import tensor_chunks

    paths = {"fp32": models(arch, folder, forms=())["FP32"]}
    pre = folder / "pre.onnx"
    for target in ("cpu", "openvino"):
        spec = qdq.QuantSpec(target)
        ranges = folder / f"{target}.ranges.json"
        qdq.calibrate(pre, tensor_chunks(calib), spec, ranges)
        paths[target] = folder / f"int8-{target}.onnx"
        qdq.quantize(pre, paths[target], spec, ranges)
    paths["nncf"] = folder / "int8-nncf.onnx"
    print(f"{arch}: NNCF on {len(calib)} images: {nncf_quantize(paths['fp32'], paths['nncf'], calib.numpy()):.1f} s")
    return paths


ROWS = {  # key -> (row name, runtime, model, precision hint)
    "ort-fp32": ("ONNX Runtime FP32", "ort", "fp32", None),
    "ort-int8": ("ONNX Runtime INT8 (wrn-deploy --target cpu)", "ort", "cpu", None),
    "ov-fp32": ("OpenVINO FP32 (hint f32)", "ov", "fp32", "f32"),
    "ov-bf16": ("OpenVINO BF16 (hint bf16)", "ov", "fp32", "bf16"),
    "ov-int8-cpu": ("OpenVINO INT8 (wrn-deploy --target cpu)", "ov", "cpu", "f32"),
    "ov-int8": ("OpenVINO INT8 (wrn-deploy --target openvino)", "ov", "openvino", "f32"),
    "nncf": ("OpenVINO INT8 (NNCF 3.4 defaults)", "ov", "nncf", "f32"),
}


def _rows(paths: dict, only: list) -> dict:
    """Row name -> an unactivated runner, for the ``only`` keys of ROWS."""
    from wrn_deploy.runners.openvino_runner import OpenVinoRunner
    from wrn_deploy.runners.ort_runner import OrtRunner

    out = {}
    for key in only:
        name, runtime, model, hint = ROWS[key]
        out[name] = OrtRunner(paths[model]) if runtime == "ort" else OpenVinoRunner(paths[model], hint)
    return out


def measure(rows: dict, batches: list, rounds: int, budget: float) -> dict:
    """{(row, batch): median images/s over interleaved rounds}."""
    runs = {(r, b): [] for r in rows for b in batches}
    for i in range(rounds):
        for b in batches:
            x = torch.rand(b, 3, 32, 32, generator=torch.Generator().manual_seed(b))
            order = list(rows.items()) if i % 2 == 0 else list(rows.items())[::-1]  # no row always first
            for name, runner in order:
                runs[(name, b)].append(b / time_call(lambda r=runner: r.infer(x), budget))
    return {k: statistics.median(v) for k, v in runs.items()}


def accuracy(rows: dict, images: torch.Tensor, labels: np.ndarray) -> dict:
    from wrn_deploy.parity.stats import paired

    logits = {name: r.infer_all(images, 64) for name, r in rows.items()}
    # the reference: ONNX Runtime FP32, else OpenVINO FP32, else (neither timed) the first row
    ref_name = next((ROWS[k][0] for k in ("ort-fp32", "ov-fp32") if ROWS[k][0] in logits), next(iter(logits)))
    ref = logits[ref_name]
    out = {}
    for name, got in logits.items():
        s = paired(ref, got, labels, resamples=10)
        out[name] = (s.agreement, s.diff, s.mean_abs_logit_diff, s.ref_top1, ref_name)
    return out


def report(model: str, rows: dict, speed: dict, acc: dict, batches: list, images: int) -> None:
    ref_top1 = next(iter(acc.values()))[3]
    print(f"\n{model}: images/s (median of interleaved rounds); accuracy on {images} CIFAR-10 test images "
          f"against {next(iter(acc.values()))[4]} (top-1 {ref_top1:.2f}%)")
    head = "| runtime / model | " + " | ".join(f"batch {b} img/s" for b in batches) + \
        " | top-1 agreement | Δ top-1 (pts) | mean abs Δlogit |"
    print(head)
    print("|---" * (len(batches) + 4) + "|")
    for name, runner in rows.items():
        asked, ran = getattr(runner, "precision", None), getattr(runner, "ran_precision", None)
        ran = f" (ran {ran}: no BF16 here)" if asked and ran != asked else ""
        a = acc[name]
        print(f"| {name}{ran} | " + " | ".join(f"{speed[(name, b)]:.1f}" for b in batches)
              + f" | {a[0]:.2f}% | {a[1]:+.2f} | {a[2]:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, action="append", default=[])
    ap.add_argument("--arch", action="append", default=[], help="random-weight networks (default: wrn-16-4, "
                    "wrn-28-10 when no --checkpoint is given)")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds per row per round (at least 3 calls)")
    ap.add_argument("--calib-size", type=int, default=512)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--only", default=",".join(ROWS), help=f"rows to time, of {','.join(ROWS)}")
    ap.add_argument("--quick", action="store_true", help="2 rounds, 1 s budgets, 128 calibration, 500 test images")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.budget, args.calib_size, args.images = 2, 1.0, 128, 500
    archs = args.arch or ([] if args.checkpoint else ["wrn-16-4", "wrn-28-10"])
    batches = [int(b) for b in args.batches.split(",")]
    only = args.only.split(",")
    if set(only) - set(ROWS):
        ap.error(f"--only: rows are {', '.join(ROWS)}")
    print(machine_report())
    images, labels = _folder_images(args.data_dir / "test", args.images)
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for i, ckpt in enumerate(args.checkpoint):
            folder = Path(tmp) / f"ckpt{i}"
            folder.mkdir()
            paths, arch = _trained_forms(ckpt, folder, args.data_dir, args.calib_size)
            models.append((f"{arch} (trained: {ckpt.name})", paths))
        if archs:
            calib, _ = _folder_images(args.data_dir / "train", args.calib_size)
            for arch in archs:
                folder = Path(tmp) / arch
                folder.mkdir()
                models.append((f"{arch} (random weights)", _random_forms(arch, folder, calib)))
        for name, paths in models:
            rows = _rows(paths, only)
            for r in rows.values():
                r.activate()
            try:
                speed = measure(rows, batches, args.rounds, args.budget)
                acc = accuracy(rows, images, labels)
            finally:
                for r in rows.values():
                    r.deactivate()
            report(name, rows, speed, acc, batches, len(images))


if __name__ == "__main__":
    main()
