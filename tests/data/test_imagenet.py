"""ImageNet as users hold it (wrn_deploy.data.imagenet), on generated ImageNet-style folders of real
JPEGs (CIFAR-10 test images upscaled to 65-120 pixels; ImageNet itself is not on these machines):
every layout gives the same classes and the same label for every validation image; the model's
classes are checked as WordNet ids or by their words; bad label files, pickles and folders are one
line each."""

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.data.imagenet_like import TORCHVISION_NAMES, WNIDS, make_layouts
from wrn_deploy.card import Step, new_card
from wrn_deploy.data.load import for_card, load_dataset
from wrn_deploy.errors import UserError

LAYOUTS = ("folders", "torchvision", "flat-devkit", "flat-val-txt", "kaggle")


@pytest.fixture(scope="module")
def layouts(cifar_dir, tmp_path_factory) -> dict:
    return make_layouts(tmp_path_factory.mktemp("imagenet"), cifar_dir)


def card_for(classes, size=64, **dataset):
    return new_card("wrn-10-1", classes, size, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), Step("test"),
                    dataset={"name": "imagenet", **dataset})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_gives_the_same_labels(layouts, layout):
    ds = load_dataset("imagenet", layouts[layout], progress=False, decode=False)
    assert ds.classes == WNIDS  # sorted WordNet ids: torchvision's and timm's index order
    got = {Path(i).stem: ds.classes[y] for i, y in zip(ds.test.ids, ds.test.labels.tolist())}
    assert got == layouts["labels"] and len(got) == 12
    assert len(ds.train) + len(ds.val) == 40 and not ds.train.small  # every image is resized at use
    assert (ds.words is not None) == (layout in ("torchvision", "flat-devkit", "kaggle"))
    if ds.words:
        assert ds.words["n01443537"] == ("goldfish", "Carassius auratus")


def test_images_are_resized_and_cropped(layouts):
    sel = for_card(card_for(WNIDS), "test", data_dir=layouts["flat-devkit"])
    x = sel.first(5).images()
    assert x.shape == (5, 3, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_wordnet_id_card_in_order_or_refused(layouts):
    root = layouts["folders"]
    assert len(for_card(card_for(WNIDS), "test", data_dir=root)) == 12
    swapped = [WNIDS[1], WNIDS[0], *WNIDS[2:]]
    with pytest.raises(UserError, match=r"names class 0 'n01440764'; the model calls it 'n01443537'"):
        for_card(card_for(swapped), "test", data_dir=root)
    with pytest.raises(UserError, match="has 4 classes; the model has 3"):
        for_card(card_for(WNIDS[:3]), "test", data_dir=root)


@pytest.mark.parametrize("layout", ["torchvision", "flat-devkit", "kaggle"])
def test_readable_names_are_checked_against_the_words(layouts, layout):
    """A card with torchvision's category names: class i must be one of wnid i's words."""
    assert len(for_card(card_for(TORCHVISION_NAMES), "test", data_dir=layouts[layout])) == 12
    shifted = [TORCHVISION_NAMES[1], TORCHVISION_NAMES[0], *TORCHVISION_NAMES[2:]]
    with pytest.raises(UserError, match=r"class 0 n01440764 \(tench, Tinca tinca\); the model calls class 0 "
                                        r"'goldfish'"):
        for_card(card_for(shifted), "test", data_dir=layouts[layout])


def test_readable_names_without_words_are_taken_in_sorted_order(layouts):
    """Class folders alone say no words: the names cannot be checked, only counted."""
    assert len(for_card(card_for(TORCHVISION_NAMES), "test", data_dir=layouts["folders"])) == 12


def test_torchvisions_two_disambiguated_names_match():
    from wrn_deploy.data.imagenet import names_match

    assert names_match("crane bird", ("crane",)) and names_match("maillot tank suit", ("maillot", "tank suit"))
    assert names_match("Great White Shark", ("great white shark", "white shark"))
    assert not names_match("crane", ("goldfish", "Carassius auratus"))


def test_validation_images_alone_score_but_do_not_calibrate(layouts, tmp_path):
    import shutil

    root = tmp_path / "val-only"
    shutil.copytree(layouts["flat-devkit"], root, ignore=shutil.ignore_patterns("train"))
    card = card_for(WNIDS)
    assert len(for_card(card, "test", data_dir=root)) == 12
    with pytest.raises(UserError, match="no training images"):
        for_card(card, "val", data_dir=root)


def test_eval_on_the_flat_validation_folder(layouts, tmp_path):
    """The CLI end to end: a 64-pixel checkpoint named like torchvision's, scored on Kaggle's tree."""
    from wrn_deploy.arch import create_model
    from wrn_deploy.checkpoint import save_checkpoint

    torch.manual_seed(0)
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, create_model("wrn-10-1", 4, dropout=0.0).state_dict(), card_for(TORCHVISION_NAMES))
    run_cli("eval", "--checkpoint", ckpt, "--reference", ckpt, "--data-dir", layouts["kaggle"], "-o", tmp_path / "e",
            "--no-progress")
    import json

    rep = json.loads((tmp_path / "e.json").read_text())
    assert rep["data"]["dataset"] == "imagenet" and rep["data"]["images"] == 12 and rep["passed"]
    assert rep["data"]["classes"] == TORCHVISION_NAMES


# -- refusals ---------------------------------------------------------------------------------------------
class Evil:
    def __reduce__(self):
        import os

        return os.system, ("touch pwned",)


def _flat_only(tmp_path, layouts) -> Path:
    import shutil

    root = tmp_path / "flat"
    shutil.copytree(layouts["flat-devkit"], root, ignore=shutil.ignore_patterns("train", "ILSVRC2012_devkit_t12"))
    return root


def test_meta_bin_is_never_unpickled_beyond_plain_data(layouts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _flat_only(tmp_path, layouts)
    (root / "meta.bin").write_bytes(pickle.dumps(({"n01440764": ("tench",)}, [Evil()]), protocol=2))
    (root / "ILSVRC2012_validation_ground_truth.txt").write_text("449\n")
    with pytest.raises(UserError, match=r"meta.bin .*weights_only"):
        load_dataset("imagenet", root, progress=False, decode=False)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("case,words", [
    ("no label file", "no label file was found"),
    ("ground truth without meta", "needs the devkit's meta.mat"),
    ("kaggle csv without header", "ImageId,PredictionString"),
    ("val.txt by index without classes", "labels images by class index"),
    ("val.txt unknown label", "neither a WordNet id nor a class index"),
    ("image without a label", "has no label"),
    ("class folders not wnids", "is not a WordNet id"),
    ("damaged meta.mat", "is not the ILSVRC2012 devkit's meta.mat"),
])
def test_bad_imagenet_folders_are_one_line(layouts, tmp_path, case, words):
    root = _flat_only(tmp_path, layouts)
    first = sorted((root / "val").iterdir())
    if case == "ground truth without meta":
        (root / "ILSVRC2012_validation_ground_truth.txt").write_text("449\n" * 12)
    elif case == "kaggle csv without header":
        (root / "LOC_val_solution.csv").write_text("ILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    elif case == "val.txt by index without classes":
        (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 0\n")
    elif case == "val.txt unknown label":
        (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG cat\n")
    elif case == "image without a label":
        (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG n01440764\n")
    elif case == "class folders not wnids":
        (root / "val" / "cat").mkdir()
        first[0].rename(root / "val" / "cat" / first[0].name)
    elif case == "damaged meta.mat":
        (root / "ILSVRC2012_devkit_t12" / "data").mkdir(parents=True)
        (root / "ILSVRC2012_devkit_t12" / "data" / "meta.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(UserError, match=words) as e:
        load_dataset("imagenet", root, progress=False, decode=False)
    assert "\n" not in e.value.format_message()


def test_imagefolder_names_still_go_to_imagefolder(layouts):
    """--data imagefolder reads the same class folders without the ImageNet rules."""
    ds = load_dataset("imagefolder", layouts["folders"], progress=False, decode=False)
    assert ds.classes == WNIDS and ds.words is None
    assert dataclasses.is_dataclass(ds)
