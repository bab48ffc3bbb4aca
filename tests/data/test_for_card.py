"""``data.for_card``: the one way a step after training gets its images, and the device cache."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from wrn_deploy.card import Step, new_card
from wrn_deploy.data import for_card, load_dataset
from wrn_deploy.data.batches import tensor_batches
from wrn_deploy.data.sources import TensorSplit
from wrn_deploy.data.synthetic import CLASSES
from wrn_deploy.errors import UserError

# A training run that held out 700 images with seed 3 (not the defaults).
CARD = new_card("wrn-10-1", CLASSES, 32, (0.5,) * 3, (0.25,) * 3, Step("test"),
                dataset={"name": "synthetic", "val_size": 700, "split_seed": 3})


def test_held_out_split_is_the_training_runs_own():
    run = load_dataset("synthetic", val_size=700, split_seed=3, progress=False)
    val, train = for_card(CARD, "val"), for_card(CARD, "train")
    assert val.ids == run.val.ids and train.ids == run.train.ids and len(val) == 700
    assert np.array_equal(val.labels, run.val.labels)
    # bit-equal to torch's own uint8 -> float division (torchvision's ToTensor)
    assert np.array_equal(val.images(), (torch.from_numpy(run.val.images).float() / 255).numpy())
    assert val.identity == run.identity
    test = for_card(CARD, "test")
    assert len(test) == 2000 and test.ids[0].startswith("synthetic/test/")


def test_another_dataset_uses_its_default_split():
    other = replace(CARD, dataset={"name": "imagefolder"})
    with pytest.raises(UserError, match="--allow-other-data"):
        for_card(other, "val", data="synthetic")
    chosen = for_card(other, "val", data="synthetic", allow_other_data=True)
    assert len(chosen) == 1000  # the synthetic set's own default, not the card's 700


def test_subsets_keep_the_choice():
    chosen = for_card(CARD, "test").first(10)
    assert len(chosen) == 10 and chosen.images().shape == (10, 3, 32, 32)
    assert chosen.subset([1, 3]).ids == [chosen.ids[1], chosen.ids[3]]


@pytest.mark.parametrize("card,fragment", [
    (replace(CARD, dataset={}), "pass --data"),
    (replace(CARD, classes=("a", "b")), "has 10 classes; the model has 2"),
    (replace(CARD, input_size=64), "the model takes 3x64x64"),
])
def test_mismatches_are_one_clear_error(card, fragment):
    with pytest.raises(UserError, match=fragment):
        for_card(card, "test")


def test_device_copies_belong_to_their_split():
    """Each split keeps its own device copy: no cache keyed by id() that a new split could hit."""
    splits = []
    for i in range(50):
        images = torch.full((4, 3, 2, 2), i, dtype=torch.uint8)
        split = TensorSplit(images, torch.arange(4), [str(k) for k in range(4)])
        x, _ = next(tensor_batches(split, 4, "cpu"))
        assert (x * 255).round().eq(i).all()  # never another (possibly collected) split's images
        assert split.on("cpu") is split.on("cpu")  # moved once
        splits.append(split) if i % 2 else None  # let half of them be collected, reusing ids
    assert all(len(s._on_device) == 1 for s in splits)
