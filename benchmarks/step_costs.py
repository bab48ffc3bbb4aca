"""What each step costs, against what it is given: wall time and peak memory of export, quantize,
eval and the whole pipeline as the images on disk, the calibration count and the model grow, and
quantize beside NNCF's on the same model and images.

    python benchmarks/step_costs.py disk  [--sizes 1000,10000,50000] [--data-dir CIFAR_FOLDER] [--no-pipeline]
                                          [--archs wrn-16-4]
    python benchmarks/step_costs.py calib [--counts 128,512,2048]
    python benchmarks/step_costs.py model [--archs wrn-16-4,wrn-28-10,wrn-50-2] [--calib-size 512]
    python benchmarks/step_costs.py nncf  [--archs wrn-16-4] [--calib-size 512]

``--code DIR`` runs the steps with another checkout's package (e.g. an older version, for a
before/after in the same run).

Every step is a fresh process (``python -m wrn_deploy``, or a benchmark script); its peak resident
memory is the child's ``ru_maxrss``. Weights are random (cost does not depend on them); the
checkpoint's card names the folder's classes and a held-out size, so every row does the same work:
- disk: WRN-16-4 (or one --archs at 32 px), a training folder of N images (hard links into ``--data-dir``'s train/ when
  given, else generated 32 px PNGs); export (verified on 256 test images), quantize (CPU form, 256
  calibration images, the guard on 444), eval of the INT8 model on 500 test images. Each row twice:
  "cold" with an empty file index, "warm" with the index the cold run left. Then (unless
  --no-pipeline) ``wrn-deploy pipeline --checkpoint`` on the same images and counts, with its own
  file index (cold, then warm): FP32 and FP16 exports, the TensorRT, CPU and (where installed)
  OpenVINO INT8 forms, eval of each; --no-bench, and --no-triton, so no Triton repository is
  written and no tritonserver starts. Its memory is the largest sum over the process tree
  (sampled every 0.2 s; psutil), should it start any.
- calib: WRN-16-4, quantize --target cpu --no-guard with 128 ... 2,048 calibration images.
- model: quantize --target cpu --no-guard with 512 calibration images; WRN-50-2 on generated
  256 px JPEGs at 224 px input, the others at 32 px.
- nncf: quantize --target cpu and --target openvino (--no-guard; the default percentile method, and
  openvino with --method minmax, one pass of min-max statistics as NNCF's default takes), and NNCF's default
  ``nncf.quantize`` (``benchmarks/nncf_quantize.py``: the ONNX export in, the same calibration
  images, read as quantize reads them and checked against its manifest, its model written out),
  each a fresh process from start to written model; 512 calibration images, images as in model.
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


def step(args: list, env: dict, ok: tuple = (0,), tree: bool = False) -> tuple:
    """(seconds, peak MiB) of ``wrn-deploy ARGS`` in a fresh process; fails loudly on an exit code not
    in ``ok``. The peak is the largest process's (``ru_maxrss``); with ``tree``, the largest sum of
    the resident memory of every process the step started (sampled every 0.2 s)."""
    cmd = args if Path(str(args[0])).suffix == ".py" else ["-m", "wrn_deploy", *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # never a full pipe
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PEAK, sys.executable, *map(str, cmd)],
                                stdout=out, stderr=err, text=True, env=env)
        peak_tree = 0
        while tree and proc.poll() is None:
            peak_tree = max(peak_tree, tree_rss(proc.pid))
            time.sleep(0.2)
        proc.wait()
        seconds = time.perf_counter() - t0
        out.seek(0), err.seek(0)
        out, err = out.read(), err.read()
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{out[-1000:]}{err[-2000:]}")
    largest = int(err.strip().splitlines()[-1]) / 1024
    return seconds, max(largest, peak_tree / 2**20) if tree else largest


def tree_rss(pid: int) -> int:
    """Resident bytes of every process below ``pid`` (its children, theirs, ...)."""
    try:
        import psutil  # comes with nncf
    except ImportError:
        raise SystemExit("the pipeline's memory is sampled with psutil: pip install psutil") from None

    try:
        return sum(c.memory_info().rss for c in psutil.Process(pid).children(recursive=True))
    except psutil.Error:  # a process ended while being read: the next sample counts again
        return 0


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
        ckpt = checkpoint(tmp, args.archs or "wrn-16-4", 32, 700, classes)
        for run in ("cold", "warm"):
            env = dict(os.environ, WRN_DEPLOY_FILE_INDEX=str(tmp / f"index-{n}.sqlite"))
            out = tmp / f"out-{n}-{run}"
            out.mkdir()
            common = ["--data", "imagefolder", "--data-dir", data]
            cost = {"export": step(["export", ckpt, "-o", out / "m.onnx", *common[2:]], env),
                    "quantize": step(["quantize", out / "m.onnx", "-o", out / "q.onnx", "--target", "cpu",
                                      "--calib-size", 256, "--calib-dir", out / "calib", "--no-progress",
                                      *common], env),
                    # eval exits 1 when a gate fails (random weights): the work was done all the same.
                    "eval": step(["eval", "--onnx", out / "q.onnx", "--images", 500, "-o", out / "r",
                                  "--no-progress", "--allow-other-data", *common], env, ok=(0, 1))}
            if args.pipeline:  # its own file index: cold means cold for it too
                pipe_env = dict(env, WRN_DEPLOY_FILE_INDEX=str(tmp / f"index-{n}-pipeline.sqlite"))
                cost["pipeline"] = pipeline(ckpt, data, out / "pipeline", pipe_env)
            rows.append((f"{n:,} images on disk, {run}", cost))
            print(_row(*rows[-1]), flush=True)
    return rows


def pipeline(ckpt: Path, data: Path, out: Path, env: dict) -> tuple:
    """The pipeline from ``ckpt`` on the disk rows' images and counts: export (FP32 and FP16, verified
    on 256 test images), quantize (TensorRT and CPU forms, and OpenVINO's where installed; 256
    calibration images, the guard on 444), a TensorRT build where TensorRT and a GPU exist, and eval
    of every artifact on 500 test images. No bench (--no-bench); no Triton repository and so no
    tritonserver (--no-triton). Memory: the process tree's."""
    cost = step(["pipeline", "--checkpoint", ckpt, "--data-dir", data, "--calib-size", 256, "--images", 500,
                 "--no-bench", "--no-triton", "--no-progress", "-o", out], env, ok=(0, 1), tree=True)
    # Exit 1 is a failed gate (random weights) or a failed step: only the first still did the work.
    steps = json.loads((out / "report.json").read_text())["steps"]
    failed = [f"{s['step']} ({s['reason']})" for s in steps if s["status"] == "failed"]
    if failed:
        raise SystemExit(f"pipeline steps failed: {', '.join(failed)} (see {out})")
    return cost


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


def model_data(arch: str, tmp: Path, train: int) -> tuple:
    """(a generated folder of ``train`` training images, the input size) for ``arch``: WRN-50-2 on
    256 px JPEGs at 224 px (resized at use), the others on 32 px PNGs."""
    large = arch == "wrn-50-2"
    data = tmp / f"d-{arch}-{train}"
    if not data.exists():
        generated(data, train, 10, 256 if large else 32, "jpg" if large else "png")
    return data, 224 if large else 32


def model(args, tmp: Path) -> list:
    rows, n = [], args.calib_size
    for arch in (args.archs or "wrn-16-4,wrn-28-10,wrn-50-2").split(","):
        data, size = model_data(arch, tmp, 700)
        ckpt = checkpoint(tmp, arch, size, 600, CLASSES)
        env = dict(os.environ, WRN_DEPLOY_FILE_INDEX=str(tmp / "index.sqlite"))
        onnx = tmp / f"{arch}.onnx"
        cost = {"export": step(["export", ckpt, "-o", onnx, "--no-verify"], env),
                "quantize": step(["quantize", onnx, "-o", tmp / f"{arch}.q.onnx", "--target", "cpu", "--no-guard",
                                  "--calib-size", n, "--calib-dir", tmp / "calib", "--no-progress",
                                  "--data-dir", data], env)}
        rows.append((f"{arch} ({size} px), {n:,} calibration images", cost))
        print(_row(*rows[-1]), flush=True)
    return rows


def nncf(args, tmp: Path) -> list:
    """wrn-deploy's quantize (cpu and openvino targets, no guard) against NNCF's default
    ``nncf.quantize`` on the same FP32 export and exactly the same calibration images."""
    rows, n = [], args.calib_size
    for arch in (args.archs or "wrn-16-4").split(","):
        data, size = model_data(arch, tmp, n + 200)
        ckpt = checkpoint(tmp, arch, size, n + 100, CLASSES)
        env = dict(os.environ, WRN_DEPLOY_FILE_INDEX=str(tmp / "index.sqlite"))
        onnx, calib_dir = tmp / f"{arch}.onnx", tmp / f"calib-{arch}"
        step(["export", ckpt, "-o", onnx, "--no-verify"], env)
        forms = (("cpu", "percentile"), ("openvino", "percentile"), ("openvino", "minmax"))  # percentile: the default
        cost = {f"quantize --target {t}" + (f" --method {m}" if m != "percentile" else ""):
                step(["quantize", onnx, "-o", tmp / f"{arch}.{t}.{m}.onnx", "--target", t, "--method", m,
                      "--no-guard", "--calib-size", n, "--calib-dir", calib_dir, "--no-progress", "--data-dir", data],
                     env)
                for t, m in forms}
        manifest = sorted(calib_dir.glob("*/manifest.json"))[0]  # both targets' name the same images
        cost["NNCF"] = step([Path(__file__).parent / "nncf_quantize.py", onnx, tmp / f"{arch}.nncf.onnx",
                             "--data-dir", data, "--calib-size", n, "--manifest", manifest], env)
        rows.append((f"{arch} ({size} px), {n:,} calibration images", cost))
        print(_row(*rows[-1]), flush=True)
    return rows


def _row(name: str, cost: dict) -> str:
    return f"| {name} | " + " | ".join(f"{k} {s:.1f} s, {m:,.0f} MiB" for k, (s, m) in cost.items()) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("axis", choices=("disk", "calib", "model", "nncf"))
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--data-dir", help="a CIFAR-style folder (train/, test/) to link images from")
    ap.add_argument("--counts", default="128,512,2048")
    ap.add_argument("--pipeline", action=argparse.BooleanOptionalAction, default=True,
                    help="disk: also time the whole pipeline from the checkpoint [on]")
    ap.add_argument("--archs", help="disk: one [wrn-16-4]; model: [wrn-16-4,wrn-28-10,wrn-50-2]; nncf: [wrn-16-4]")
    ap.add_argument("--calib-size", type=int, default=512, help="model, nncf: calibration images [512]")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--code", help="run the steps with the wrn_deploy package of this checkout")
    args = ap.parse_args()
    if args.code:
        os.environ["PYTHONPATH"] = str(Path(args.code).resolve())
    print(machine_report(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"disk": disk, "calib": calib, "model": model, "nncf": nncf}[args.axis](args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
