"""The pipeline's second quantize step decodes nothing: calibration and guard images are kept (uint8)
from the first, and what it writes is what it writes without them."""

import json

import numpy as np
import pytest

from wrn_deploy.data import sources
from wrn_deploy.quant import decoded



def _image_set(root, trained_onnx, side: tuple, ext: str, resize: int | None):
    """The kit's WRN-10-1 (32 px) with a card for a folder of ``side``-pixel images (``resize``: the
    card's preprocess resize), and that folder: 5 training images a class (40 held out: 16
    calibrate, 24 guard), one test image a class."""
    from dataclasses import replace

    from PIL import Image

    from wrn_deploy.card import Preprocess, read_card, write_into_onnx
    from wrn_deploy.data.synthetic import CLASSES

    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("test", 1)):
        for c in CLASSES:
            (root / "data" / split / c).mkdir(parents=True)
            for i in range(n):
                w, h = rng.integers(side[0], side[1] + 1, 2)
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / "data" / split / c / f"{i}.{ext}", quality=90)
    # Class folders list in sorted order; the card names the outputs so (only their names change).
    card = replace(read_card(trained_onnx), classes=tuple(sorted(CLASSES)), preprocess=Preprocess(resize=resize),
                   dataset={"name": "imagefolder", "val_size": 40, "split_seed": 0})
    (root / "m.onnx").write_bytes(trained_onnx.read_bytes())
    write_into_onnx(root / "m.onnx", card)
    return root


@pytest.fixture(scope="module")
def large_images(trained_onnx, tmp_path_factory):
    """72-100 px JPEGs, resized to 36 px and centre-cropped to 32 at use."""
    return _image_set(tmp_path_factory.mktemp("large-images"), trained_onnx, (72, 100), "jpg", 36)


@pytest.fixture(scope="module")
def small_images(trained_onnx, tmp_path_factory):
    """32 px PNGs, used as they are."""
    return _image_set(tmp_path_factory.mktemp("small-images"), trained_onnx, (32, 32), "png", None)


@pytest.fixture
def decodes(monkeypatch):
    """The paths decoded from here on (every decode of an image file goes through decode_rgb)."""
    seen, decode = [], sources.decode_rgb

    def counting(path):
        seen.append(path)
        return decode(path)
    monkeypatch.setattr(sources, "decode_rgb", counting)
    decoded.forget()
    yield seen
    decoded.forget()


def _quantize(root, target, calib_dir):
    from wrn_deploy.quant.onnx_to_int8 import QuantOptions, quantize_onnx
    from wrn_deploy.quant.qdq import QuantSpec

    out = calib_dir.parent / f"{calib_dir.name}-{target}.onnx"
    opts = QuantOptions(spec=QuantSpec(target=target), data_dir=str(root / "data"), calib_size=16,
                        calib_dir=str(calib_dir), max_drop=50.0, progress=False)
    return quantize_onnx(root / "m.onnx", out, opts)


def _written(report) -> tuple:
    """What a quantize step wrote that the images decide: ranges, manifest, guard."""
    from pathlib import Path

    folder = Path(report["calibration"]["folder"])
    manifest = json.loads((folder / "manifest.json").read_text())
    return (folder / "ranges.json").read_text(), manifest, report["guard"]


@pytest.mark.parametrize("images", ["large_images", "small_images"])
def test_the_second_quantize_step_decodes_nothing_and_writes_the_same(images, decodes, tmp_path, request):
    root = request.getfixturevalue(images)
    first = _quantize(root, "cpu", tmp_path / "a")
    assert len(decodes) == 16 + 24 and len(set(decodes)) == 40  # each image once (percentile: two passes)
    decodes.clear()
    kept = _quantize(root, "tensorrt", tmp_path / "a")
    assert decodes == []
    decoded.forget()
    fresh = _quantize(root, "tensorrt", tmp_path / "b")
    assert len(decodes) == 40
    assert _written(kept) == _written(fresh)
    assert first["guard"]["fp32_top1"] == kept["guard"]["fp32_top1"]


def test_a_changed_image_is_decoded_again(large_images, decodes, tmp_path):
    import shutil

    from PIL import Image

    from wrn_deploy.card import read_card
    from wrn_deploy.quant import calibset

    data_dir = shutil.copytree(large_images / "data", tmp_path / "data")
    card = read_card(large_images / "m.onnx")
    guard = calibset.choose(card, None, data_dir, 16, seed=0).guard
    images = decoded.uint8_images(guard)
    assert str(images.dtype).endswith("uint8") and tuple(images.shape) == (24, 3, 32, 32) and len(decodes) == 24
    assert decoded.uint8_images(calibset.choose(card, None, data_dir, 16, seed=0).guard) is images
    assert len(decodes) == 24
    changed = data_dir / guard.ids[0]
    Image.new("RGB", (90, 80), (255, 0, 0)).save(changed)
    again = calibset.choose(card, None, data_dir, 16, seed=0).guard
    assert decoded.key(again) != decoded.key(guard)
    fresh = decoded.uint8_images(again)
    assert len(decodes) == 48 and (fresh[0] != images[0]).any() and (fresh[1:] == images[1:]).all()


def test_kept_images_stay_within_their_bounds(monkeypatch):
    import torch

    monkeypatch.setattr(decoded, "DECODED_KEEP_BYTES", 1000)
    decoded.forget()
    for k in range(6):
        decoded._keep(("small", k), torch.zeros(100, dtype=torch.uint8))
    assert [k for _, k in decoded._KEPT] == [2, 3, 4, 5]  # DECODED_KEEP_ENTRIES, the oldest dropped
    decoded._keep(("big", 0), torch.zeros(800, dtype=torch.uint8))
    assert list(decoded._KEPT) == [("small", 4), ("small", 5), ("big", 0)]  # at most 1000 bytes
    decoded._keep(("huge", 0), torch.zeros(1001, dtype=torch.uint8))
    assert ("huge", 0) not in decoded._KEPT and len(decoded._KEPT) == 3  # too big to keep: nothing dropped
    decoded.forget()
