import json
import numpy as np
from dataclasses import replace

import pytest

from wrn_deploy.card import Step, new_card
from wrn_deploy.data.synthetic import CLASSES
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import sha256_file
from wrn_deploy.quant import calibset

CARD = new_card("wrn-10-1", CLASSES, 32, (0.5,) * 3, (0.25,) * 3, Step("test"),
                dataset={"name": "synthetic", "val_size": 1000, "split_seed": 0})


def test_calibration_comes_from_held_out_training_images_and_guard_gets_the_rest():
    data = calibset.choose(CARD, "synthetic", None, 300, seed=5)
    calib, guard = set(data.calib.ids), set(data.guard.ids)
    assert len(calib) == 300 and len(guard) == 700 and not calib & guard
    assert all(i.startswith("synthetic/train/") for i in calib | guard)
    again = calibset.choose(CARD, "synthetic", None, 300, seed=5)
    other = calibset.choose(CARD, "synthetic", None, 300, seed=6)
    assert again.calib.ids == data.calib.ids != other.calib.ids


def test_calibration_from_the_training_part():
    data = calibset.choose(CARD, "synthetic", None, 100, seed=0, split="train")
    assert len(data.guard) == 1000 and not set(data.calib.ids) & set(data.guard.ids)


@pytest.mark.parametrize("card,size,fragment", [
    (CARD, 4, "too small"),
    (CARD, 1000, "leaves no"),
    (replace(CARD, input_size=64), 64, "the model takes 3x64x64"),
    (replace(CARD, classes=tuple(map(str, range(100)))), 64, "100"),
])
def test_bad_calibration_requests(card, size, fragment):
    with pytest.raises(UserError, match=fragment):
        calibset.choose(card, "synthetic", None, size, seed=0)


def test_a_cache_made_for_another_model_is_refused(tmp_path):
    data = calibset.choose(CARD, "synthetic", None, 32, seed=0)
    manifest = calibset.make_manifest(data, "a" * 64, "tensorrt", "minmax", 99.99, 0)
    folder = calibset.calibration_folder(tmp_path, "wrn-10-1", manifest)
    folder.mkdir()
    copy = tmp_path / "copy.json"
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, model_sha256="b" * 64)))
    with pytest.raises(UserError, match="another model"):
        calibset.check_cached(folder, manifest, copy)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert not calibset.check_cached(folder, manifest, copy)  # no ranges yet
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData, save_tensors_data

    save_tensors_data(TensorsData(CalibrationMethod.MinMax, {"x": TensorData(lowest=np.float32(-1), highest=np.float32(1))}),
                      folder / "ranges.json")
    assert not calibset.check_cached(folder, manifest, copy)  # a manifest without the ranges' sha256 (before 0.7)
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, ranges_sha256=sha256_file(folder / "ranges.json"))))
    assert calibset.check_cached(folder, manifest, copy)
    assert copy.read_bytes() == (folder / "ranges.json").read_bytes()  # quantization reads the checked copy
