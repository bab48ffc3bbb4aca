"""Where TensorRT (or a GPU) is missing, build and --engine explain themselves; the rest works."""

import importlib.util

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")


def test_build_names_the_trt_extra(tmp_path):
    from tests.export.conftest import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "c.safetensors")
    run_cli("export", ckpt, "-o", tmp_path / "m.onnx", "--no-verify")
    proc = run_cli("build", tmp_path / "m.onnx", "-o", tmp_path / "m.plan", check=False, process=True)
    assert proc.returncode == 2 and "'trt' extra" in proc.stderr and "NVIDIA GPU" in proc.stderr
    assert not (tmp_path / "m.plan").exists()


def test_eval_engine_names_the_trt_extra(tmp_path):
    from tests.export.conftest import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "c.safetensors")
    (tmp_path / "m.plan").write_bytes(b"plan")
    args = ("eval", "--engine", tmp_path / "m.plan", "--reference", ckpt, "--no-progress", "--limit", "8")
    proc = run_cli(*args, check=False)  # unverifiable: refused before TensorRT is even looked for
    assert proc.returncode == 2 and "no manifest" in proc.stderr and "--allow-unverified" in proc.stderr
    proc = run_cli(*args, "--allow-unverified", check=False)
    assert proc.returncode == 2 and "'trt' extra" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.count("no manifest") == 1  # the warning once, then the attempt
