import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="session")
def served_onnx(tmp_path_factory):
    """A WRN-10-1 (random weights, real BatchNorm statistics) exported to FP32 ONNX."""
    from tests.export.conftest import make_checkpoint

    root = tmp_path_factory.mktemp("served")
    ckpt = make_checkpoint(root / "c.safetensors", arch="wrn-10-1", dropout=0.0)
    run_cli("export", ckpt, "-o", root / "m.onnx", "--no-verify")
    return root / "m.onnx"
