import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="session")
def trained_onnx(tmp_path_factory):
    """A WRN-10-1 trained for two epochs on the synthetic set (about 75% accurate), as FP32 ONNX."""
    root = tmp_path_factory.mktemp("trained")
    run_cli("train", "--arch", "wrn-10-1", "--epochs", "2", "--out", root / "run", "--no-progress")
    onnx = root / "wrn-10-1.onnx"
    run_cli("export", root / "run" / "best.safetensors", "-o", onnx, "--no-verify")
    return onnx
