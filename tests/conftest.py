"""Shared fixtures: real CIFAR-10 images from ../shared (extracted once per session) and skips for
GPU/TensorRT tests on machines without them."""

import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "cifar10"


def pytest_collection_modifyitems(config, items):
    import importlib.util

    import torch

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


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    """An ImageFolder tree: train/ (200 JPEG images per class) and test/ (the 1,000 lossless images)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared CIFAR-10 images not found at {SHARED}")
    dest = tmp_path_factory.mktemp("cifar10")
    _extract(SHARED / "train-jpeg.tar.gz", dest, 200)
    _extract(SHARED / "test1000-lossless.tar.gz", dest, None)
    return dest


def run_cli(*args, check=True, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m wrn_deploy ARGS`` the way a user would, capturing its output."""
    import sys

    proc = subprocess.run([sys.executable, "-m", "wrn_deploy", *map(str, args)], capture_output=True,
                          text=True, cwd=kw.pop("cwd", ROOT), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
