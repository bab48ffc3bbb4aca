"""Shared fixtures: CIFAR-10 images (the real ones from ../shared, extracted once per session, or
generated stand-ins in the same layout where ../shared is absent) and skips for GPU/TensorRT tests
on machines without them."""

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# WRN_DEPLOY_TEST_SHARED points elsewhere (a missing folder runs the suite as a clone without ../shared).
SHARED = Path(os.environ.get("WRN_DEPLOY_TEST_SHARED", ROOT.parent / "shared")) / "data" / "cifar10"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NEEDS_REAL = "needs the real CIFAR-10 images of ../shared"


# The longest test files, longest first (measured totals): pytest-xdist hands whole files to its two
# workers in this order (pyproject's --no-loadscope-reorder keeps it), so the long ones start early
# and do not leave one worker alone at the end.
LONGEST_FIRST = ["test_bad_input.py", "pipeline/test_pipeline.py", "train/test_train.py", "train/test_distributed.py",
                 "cpp/test_bad_input.py", "train/test_recipe.py", "quant/test_quantize.py", "parity/test_eval.py",
                 "pipeline/test_served.py", "triton/test_server.py", "test_wheel.py", "cpp/test_sanitizers.py",
                 "test_bench.py", "test_polygraphy.py", "test_reproducible.py", "quant/test_placement.py", "triton/test_stock_client.py",
                 "cpp/test_preprocess.py", "export/test_raw_pixels.py", "foreign/test_ports.py"]


def _longest_first(items) -> None:
    rank = {f"tests/{name}": i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: file order kept


def pytest_collection_modifyitems(config, items):
    import importlib.util

    import torch

    _longest_first(items)

    has_cuda = torch.cuda.is_available()
    has_trt = importlib.util.find_spec("tensorrt") is not None
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "trt" in item.keywords and not (has_cuda and has_trt):
            item.add_marker(pytest.mark.skip(reason="needs TensorRT and a CUDA GPU"))


def _extract(archive: Path, dest: Path, members_per_class: int | None) -> Path:
    with tarfile.open(archive) as tar:
        seen: dict = {}
        picked = []
        for m in tar:
            if not m.isfile():
                continue
            cls = Path(m.name).parent.name
            if members_per_class is None or seen.get(cls, 0) < members_per_class:
                seen[cls] = seen.get(cls, 0) + 1
                picked.append(m)
        tar.extractall(dest, members=picked, filter="data")
    return dest


def _generate(dest: Path) -> Path:
    """The layout of the shared archives, drawn by the built-in synthetic set under CIFAR-10's class
    names: train/CLASS/NNNN.jpg (200 per class, JPEG quality 75 with 4:2:0 chroma like the shared
    files) and test/CLASS/INDEX.png (1,000 lossless images, uneven class counts)."""
    from PIL import Image

    from wrn_deploy.data.synthetic import make_synthetic

    for split, n, seed in (("train", 2000, 101), ("test", 1000, 202)):
        images, labels = make_synthetic(n, seed)
        counts: dict = {}
        for i, (x, y) in enumerate(zip(images, labels.tolist())):
            folder = dest / split / CIFAR10_CLASSES[y]
            folder.mkdir(parents=True, exist_ok=True)
            im = Image.fromarray(x.permute(1, 2, 0).numpy())
            if split == "train":
                counts[y] = counts.get(y, 0) + 1
                im.save(folder / f"{counts[y] - 1:04d}.jpg", quality=75, subsampling="4:2:0")
            else:
                im.save(folder / f"{i}.png")
    return dest


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    """An ImageFolder tree: train/ (200 JPEG images per class) and test/ (1,000 lossless images): the
    shared real CIFAR-10 images, or generated ones in the same layout where ../shared is absent."""
    dest = tmp_path_factory.mktemp("cifar10")
    if not SHARED.is_dir():
        return _generate(dest)
    _extract(SHARED / "train-jpeg.tar.gz", dest, 200)
    _extract(SHARED / "test1000-lossless.tar.gz", dest, None)
    return dest


@pytest.fixture(scope="session")
def real_cifar_dir(cifar_dir) -> Path:
    """``cifar_dir`` where its images must be the real ones (e.g. decoding another encoder's JPEGs)."""
    if not SHARED.is_dir():
        pytest.skip(f"{NEEDS_REAL} (not found at {SHARED})")
    return cifar_dir


def once(request, tmp_path_factory, name: str, make) -> Path:
    """A folder that ``make(folder)`` fills once per test session, shared by the session's pytest-xdist
    workers (the first to ask makes it while the others wait on a lock; a failed attempt is redone)."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base  # the session's, not a worker's
    folder = shared / name
    with open(shared / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / f"{name}.done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (shared / f"{name}.done").touch()
    return folder


def _make_kit(root: Path) -> None:
    # Half the training images in batches of 64: the same 140 steps as all 9,000 in batches of 128, at
    # half the cost, and as accurate (69% on the synthetic test split against 70%).
    run_cli("train", "--arch", "wrn-10-1", "--epochs", "2", "--train-images", "4500", "--batch-size", "64",
            "-o", root / "run", "--no-progress")
    ckpt = root / "run" / "best.safetensors"
    run_cli("export", ckpt, "-o", root / "m.onnx", "--no-verify")
    run_cli("export", ckpt, "-o", root / "h.onnx", "--fp16", "--no-verify")
    run_cli("quantize", root / "m.onnx", "-o", root / "q.onnx", "--calib-dir", root / "calib", "--calib-size", "128",
            "--no-progress")
    run_cli("keygen", root / "k.pem", root / "k.pub")


@pytest.fixture(scope="session")
def kit(request, tmp_path_factory) -> Path:
    """The session's model kit, made once by the project's own commands and shared by every test
    package that needs a trained model: a WRN-10-1 trained two epochs on half the synthetic training
    images (about 70% accurate) in run/, its FP32 (m.onnx), FP16 (h.onnx) and INT8 (q.onnx, 128 calibration
    images in calib/) exports, and an Ed25519 key pair (k.pem, k.pub). Tests copy from it and never
    write into it."""
    return once(request, tmp_path_factory, "kit", _make_kit)


def pytest_configure(config):
    """Under pytest-xdist each worker computes on one thread: two workers on two cores, not four
    threads fighting for them (child processes inherit the setting)."""
    if hasattr(config, "workerinput"):
        os.environ["OMP_NUM_THREADS"] = os.environ.get("WRN_DEPLOY_TEST_THREADS", "1")


def pytest_terminal_summary(terminalreporter):
    """One line when tests were skipped for want of the real images (the rest ran on generated ones)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NEEDS_REAL in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped for want of the real CIFAR-10 images of ../shared; "
                                    "the other CIFAR tests ran on generated stand-in images")


def run_cli(*args, check=True, process=False, **kw) -> subprocess.CompletedProcess:
    """Run ``wrn-deploy ARGS`` and capture its exit code and output.

    In this process by default (``wrn_deploy.cli.main``, the console script's own entry point), which
    saves an interpreter start and the torch import per call. ``process=True`` runs
    ``python -m wrn_deploy`` in a child, for tests whose subject is the process: signals, locks held
    by another process, the console entry point itself."""
    args = [str(a) for a in args]
    if process:
        import sys

        proc = subprocess.run([sys.executable, "-m", "wrn_deploy", *args], capture_output=True, text=True,
                              cwd=kw.pop("cwd", ROOT), **kw)
    else:
        assert not kw, f"in-process runs take no {sorted(kw)}; pass process=True"
        proc = _in_process(args)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _in_process(args: list) -> subprocess.CompletedProcess:
    import contextlib
    import gc
    import io

    import torch

    import wrn_deploy.cli

    out, err = io.StringIO(), io.StringIO()
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            wrn_deploy.cli.main(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        # What a finished process would have dropped: global switches, and the locks and sessions
        # held by objects that only a collection frees.
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
        gc.collect()
    return subprocess.CompletedProcess(["wrn-deploy", *args], code, out.getvalue(), err.getvalue())
