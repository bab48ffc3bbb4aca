"""The card's preprocess field (wrn_deploy.card.Preprocess) and its one Python implementation
(wrn_deploy.data.preprocess): the default rule for cards without it, the JSON round trip, one-line
refusals, and torchvision's transforms exactly."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from wrn_deploy.card import Card, Preprocess, Step, default_preprocess, new_card
from wrn_deploy.errors import UserError


def card(size=64, preprocess=None):
    c = new_card("wrn-10-1", ["a", "b"], size, (0.5,) * 3, (0.25,) * 3, Step("test"))
    return dataclasses.replace(c, preprocess=preprocess)


def test_cards_without_the_field_keep_the_old_rule():
    assert default_preprocess(224) == Preprocess(256, "bilinear")
    assert default_preprocess(64) == Preprocess(73, "bilinear")  # int(64 * 256 / 224)
    assert default_preprocess(32) == Preprocess(None)
    old = {k: v for k, v in json.loads(card(224).to_json()).items() if k != "preprocess"}
    assert Card.from_dict(old, "x").preprocess == Preprocess(256)
    assert card(224).to_dict()["preprocess"] == {"resize": 256, "interpolation": "bilinear"}  # new cards say it


def test_the_field_round_trips_through_json():
    c = card(224, Preprocess(232, "bicubic"))
    d = json.loads(c.to_json())
    assert d["preprocess"] == {"resize": 232, "interpolation": "bicubic"}
    assert Card.from_dict(d, "x").preprocess == Preprocess(232, "bicubic")


@pytest.mark.parametrize("value,words", [
    ({"resize": 32}, "smaller than the input size 64"),
    ({"resize": "256"}, "whole number of pixels"),
    ({"resize": True}, "whole number of pixels"),
    ({"resize": 256, "interpolation": "nearest"}, "choose one of bilinear, bicubic"),
    ({"resize": 256, "crop": 224}, "unknown field 'crop'"),
    ("256", "must be an object"),
])
def test_bad_fields_are_one_line(value, words):
    d = dict(json.loads(card().to_json()), preprocess=value)
    with pytest.raises(UserError, match=words) as e:
        Card.from_dict(d, "m.onnx")
    assert "\n" not in e.value.format_message() and e.value.format_message().startswith("m.onnx")


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_transform_is_torchvisions(interpolation, tmp_path):
    from PIL import Image
    from torchvision import transforms as T

    from wrn_deploy.data.preprocess import image_tensor, transform

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (75, 131, 3), dtype=np.uint8))
    im.save(tmp_path / "x.png")
    want = T.Compose([T.Resize(70, interpolation=T.InterpolationMode(interpolation)), T.CenterCrop(64),
                      T.ToTensor()])(im)
    c = card(64, Preprocess(70, interpolation))
    assert torch.equal(transform(c)(im), want) and torch.equal(image_tensor(tmp_path / "x.png", c), want)


def test_no_resize_takes_the_exact_size_only(tmp_path):
    from PIL import Image

    from wrn_deploy.data.preprocess import image_tensor

    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "ok.png")
    Image.new("RGB", (40, 32)).save(tmp_path / "wide.png")
    assert image_tensor(tmp_path / "ok.png", card(32))[0].eq(1).all()
    with pytest.raises(UserError, match=r"wide.png: the image is 40x32; the model takes 32x32"):
        image_tensor(tmp_path / "wide.png", card(32))
