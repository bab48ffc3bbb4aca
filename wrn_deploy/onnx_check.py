"""The check every ONNX file wrn-deploy writes must pass, whichever step wrote it (export, quantize)."""

from pathlib import Path


def check_model(path: Path) -> None:
    """Raise unless ``path`` passes ONNX's full checker, strict shape inference included."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
