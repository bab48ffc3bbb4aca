"""Real TensorRT: build FP32, FP16 and INT8 engines and check their parity gates.

Marked ``trt``: these run only where TensorRT and an NVIDIA GPU exist (scripts/trt-check runs
them). They have not run in this project's CI, which has neither.
"""

import json

import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.trt, pytest.mark.gpu]


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("trt")
    run_cli("train", "--out", root / "run", "--no-progress")  # WRN-16-1 on the synthetic set
    ckpt = root / "run" / "best.safetensors"
    run_cli("export", ckpt, "-o", root / "fp32.onnx")
    run_cli("export", ckpt, "-o", root / "fp16.onnx", "--fp16")
    run_cli("quantize", root / "fp32.onnx", "-o", root / "int8.onnx", "--calib-dir", root / "calib", "--no-progress")
    return root


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_builds_runs_and_passes_its_gate(onnx_models, precision, tmp_path):
    plan = tmp_path / f"{precision}.plan"
    run_cli("build", onnx_models / f"{precision}.onnx", "-o", plan, "--timing-cache", onnx_models / "timing.cache")
    manifest = json.loads((tmp_path / f"{precision}.plan.json").read_text())
    assert manifest["card"]["precision"].split("+")[0] == precision
    proc = run_cli("eval", "--engine", plan, "--report", tmp_path / precision, "--no-progress", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_signed_engine_round_trip(onnx_models, tmp_path):
    run_cli("keygen", tmp_path / "k.pem", tmp_path / "k.pub")
    run_cli("build", onnx_models / "fp16.onnx", "-o", tmp_path / "s.plan", "--sign", tmp_path / "k.pem",
            "--timing-cache", onnx_models / "timing.cache")
    run_cli("eval", "--engine", tmp_path / "s.plan", "--verify-key", tmp_path / "k.pub", "--no-progress")
    data = bytearray((tmp_path / "s.plan").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "s.plan").write_bytes(bytes(data))
    proc = run_cli("eval", "--engine", tmp_path / "s.plan", "--verify-key", tmp_path / "k.pub", check=False)
    assert proc.returncode == 2 and "refusing" in proc.stderr
