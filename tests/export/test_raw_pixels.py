"""A raw-pixel front on an existing ONNX file (``triton --raw-pixels``) answers exactly as the
checkpoint's own raw-pixel export does, for FP32 and the CPU-form INT8 alike."""

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.export.conftest import make_checkpoint
from wrn_deploy.card import read_card
from wrn_deploy.runners.ort_runner import OrtRunner


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    ckpt = make_checkpoint(root / "c.safetensors", arch="wrn-10-1", dropout=0.0)
    run_cli("export", ckpt, "-o", root / "float.onnx", "--no-verify")
    run_cli("export", ckpt, "-o", root / "raw.onnx", "--raw-pixels", "--no-verify")
    run_cli("triton", root / "float.onnx", "-o", root / "repo", "--name", "front", "--raw-pixels", "--no-check-load")
    return root


def _logits(path, pixels) -> np.ndarray:
    with OrtRunner(path, threads=1) as r:
        return np.asarray(r.infer(torch.from_numpy(pixels)))


def test_the_front_answers_as_the_raw_pixel_export(made):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    served = made / "repo" / "front" / "1" / "model.onnx"
    np.testing.assert_array_equal(_logits(served, pixels), _logits(made / "raw.onnx", pixels))
    card = read_card(served)
    assert (card.input.dtype, tuple(card.input.value_range)) == ("uint8", (0, 255))
    assert card.parent.path == "../../../float.onnx" and card.step.name == "raw-pixels"
    config = (made / "repo" / "front" / "config.pbtxt").read_text()
    assert "data_type: TYPE_UINT8" in config and "format: FORMAT_NCHW" in config
    assert read_card(made / "float.onnx").input.dtype == "float32"  # the source is left as it was


@pytest.mark.parametrize("source, message", [("raw.onnx", "already takes raw pixels"),
                                             ("c.safetensors", "export it with --raw-pixels")])
def test_what_cannot_take_a_front_is_refused_in_one_line(made, source, message):
    proc = run_cli("triton", made / source, "-o", made / "refused", "--raw-pixels", "--no-check-load", check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (made / "refused").exists() or not any((made / "refused").iterdir())
