import pytest


@pytest.fixture(scope="session")
def trained_onnx(kit):
    """The kit's WRN-10-1 trained two epochs on the synthetic set (about 70% accurate), as FP32 ONNX
    (its checkpoint is run/best.safetensors beside it)."""
    return kit / "m.onnx"
