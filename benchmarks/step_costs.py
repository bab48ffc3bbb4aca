"""What each step costs, against what it is given: wall time and peak memory of export, quantize
and eval as the images on disk, the calibration count and the model grow.

    python benchmarks/step_costs.py disk  [--sizes 1000,10000,50000] [--data-dir CIFAR_FOLDER]
    python benchmarks/step_costs.py calib [--counts 128,512,2048]
    python benchmarks/step_costs.py model [--archs wrn-16-4,wrn-28-10,wrn-50-2]

``--code DIR`` runs the steps with another checkout's package (e.g. an older version, for a
before/after in the same run).

Every step is a fresh ``python -m wrn_deploy`` process; its peak resident memory is the child's
``ru_maxrss``. Weights are random (cost does not depend on them); the checkpoint's card names the
folder's classes and a held-out size, so every row does the same work:
- disk: WRN-16-4, a training folder of N images (hard links into ``--data-dir``'s train/ when
  given, else generated 32 px PNGs); export (verified on 256 test images), quantize (CPU form, 256
  calibration images, the guard on 444), eval of the INT8 model on 500 test images. Each row twice:
  "cold" with an empty file index, "warm" with the index the cold run left.
- calib: WRN-16-4, quantize --target cpu --no-guard with 128 ... 2,048 calibration images.
- model: quantize --target cpu --no-guard with 512 calibration images; WRN-50-2 on generated
  256 px JPEGs at 224 px input, the others at 32 px.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from common import machine_report

CLASSES = [f"c{i}" for i in range(10)]
PEAK = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def step(args: list, env: dict) -> tuple:
    """(seconds, peak MiB) of ``wrn-deploy ARGS`` in a fresh process; fails loudly."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "wrn_deploy", *map(str, args)],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    # eval exits 1 when a gate fails (random weights): the work was done all the same.
    if proc.returncode != 0 and not (args[0] == "eval" and proc.returncode == 1):
        raise SystemExit(f"wrn-deploy {' '.join(map(str, args))} failed:\n{proc.stderr[-2000:]}")
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024


def checkpoint(folder: Path, arch: str, size: int, val: int, classes: list) -> Path:
    from wrn_deploy.arch import create_model
    from wrn_deploy.card import Step, new_card, versions
    from wrn_deploy.checkpoint import save_checkpoint

    path = folder / f"{arch}.safetensors"
    card = new_card(arch, classes, size, (0.5,) * 3, (0.25,) * 3, Step("benchmark", {"weights": "random"},
                    versions()), dataset={"name": "imagefolder", "val_size": val, "split_seed": 0})
    save_checkpoint(path, create_model(arch, len(classes)).state_dict(), card)
    return path


def generated(root: Path, train: int, test: int, side: int, ext: str = "png") -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            d = root / split / CLASSES[i % 10]
            d.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(d / f"{i:06d}.{ext}", quality=90) if ext == "jpg" else \
                Image.fromarray(pixels).save(d / f"{i:06d}.{ext}")
    return root


def linked(src: Path, root: Path, train: int) -> Path:
    """``train`` images of ``src``/train (every class alike) and all of its test/, as hard links."""
    files = sorted((src / "train").glob("*/*"))
    step_ = max(1, len(files) // train)
    for f in files[::step_][:train]:
        (root / "train" / f.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(f, root / "train" / f.parent.name / f.name)
    for f in sorted((src / "test").glob("*/*")):
        (root / "test" / f.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(f, root / "test" / f.parent.name / f.name)
    return root


def disk(args, tmp: Path) -> list:
    rows = []
    for n in map(int, args.sizes.split(",")):
        data = linked(Path(args.data_dir), tmp / f"d{n}", n) if args.data_dir else generated(tmp / f"d{n}", n, 1000, 32)
        classes = sorted(p.name for p in (data / "train").iterdir())
        ckpt = checkpoint(tmp, "wrn-16-4", 32, 700, classes)
        for run in ("cold", "warm"):
            env = dict(os.environ, WRN_DEPLOY_FILE_INDEX=str(tmp / f"index-{n}.sqlite"))
            out = tmp / f"out-{n}-{run}"
            out.mkdir()
            common = ["--data", "imagefolder", "--data-dir", data]
            cost = {"export": step(["export", ckpt, "-o", out / "m.onnx", *common[2:]], env),
                    "quantize": step(["quantize", out / "m.onnx", "-o", out / "q.onnx", "--target", "cpu",
                                      "--calib-size", 256, "--calib-dir", out / "calib", "--no-progress",
                                      *common], env),
                    "eval": step(["eval", "--onnx", out / "q.onnx", "--images", 500, "-o", out / "r",
                                  "--no-progress", "--allow-other-data", *common], env)}
            rows.append((f"{n:,} images on disk, {run}", cost))
            print(_row(*rows[-1]), flush=True)
    return rows


def calib(args, tmp: Path) -> list:
    data = generated(tmp / "d", 3000, 10, 32)
    ckpt = checkpoint(tmp, "wrn-16-4", 32, 2600, CLASSES)
    env = dict(os.environ, WRN_DEPLOY_FILE_INDEX=str(tmp / "index.sqlite"))
    step(["export", ckpt, "-o", tmp / "m.onnx", "--no-verify"], env)
    rows = []
    for n in map(int, args.counts.split(",")):
        cost = {"quantize": step(["quantize", tmp / "m.onnx", "-o", tmp / f"q{n}.onnx", "--target", "cpu",
                                  "--no-guard", "--calib-size", n, "--calib-dir", tmp / "calib", "--no-progress",
                                  "--data-dir", data], env)}
        rows.append((f"WRN-16-4, {n:,} calibration images", cost))
        print(_row(*rows[-1]), flush=True)
    return rows


def model(args, tmp: Path) -> list:
    rows = []
    for arch in args.archs.split(","):
        large = arch == "wrn-50-2"
        data = tmp / f"d-{arch}"
        if not data.exists():
            generated(data, 700, 10, 256 if large else 32, "jpg" if large else "png")
        ckpt = checkpoint(tmp, arch, 224 if large else 32, 600, CLASSES)
        env = dict(os.environ, WRN_DEPLOY_FILE_INDEX=str(tmp / "index.sqlite"))
        onnx = tmp / f"{arch}.onnx"
        cost = {"export": step(["export", ckpt, "-o", onnx, "--no-verify"], env),
                "quantize": step(["quantize", onnx, "-o", tmp / f"{arch}.q.onnx", "--target", "cpu", "--no-guard",
                                  "--calib-size", 512, "--calib-dir", tmp / "calib", "--no-progress",
                                  "--data-dir", data], env)}
        rows.append((f"{arch} ({224 if large else 32} px), 512 calibration images", cost))
        print(_row(*rows[-1]), flush=True)
    return rows


def _row(name: str, cost: dict) -> str:
    return f"| {name} | " + " | ".join(f"{k} {s:.1f} s, {m:,.0f} MiB" for k, (s, m) in cost.items()) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("axis", choices=("disk", "calib", "model"))
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--data-dir", help="a CIFAR-style folder (train/, test/) to link images from")
    ap.add_argument("--counts", default="128,512,2048")
    ap.add_argument("--archs", default="wrn-16-4,wrn-28-10,wrn-50-2")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--code", help="run the steps with the wrn_deploy package of this checkout")
    args = ap.parse_args()
    if args.code:
        os.environ["PYTHONPATH"] = str(Path(args.code).resolve())
    print(machine_report(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"disk": disk, "calib": calib, "model": model}[args.axis](args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
