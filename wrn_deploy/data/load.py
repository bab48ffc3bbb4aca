"""Loading a dataset as train / validation (held out of train, fixed seed) / test splits, and
``for_card``: the images any step after training needs, chosen from the model's card.

The training run's held-out split is computed in one place (``_hold_out``), from the split size and
seed the card records, so export verification, calibration, the INT8 guard and eval all agree on
which images were held out.
"""

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from wrn_deploy.data.permutation import randperm
from wrn_deploy.data.preprocess import unit_float
from wrn_deploy.data.sources import (
    TensorSplit,
    find_split_dir,
    load_cifar,
    load_folder,
    load_svhn,
)
from wrn_deploy.data.table import IMAGENET_STATS, NAMES, SPLITS, SYNTHETIC_SIZES, TABLE, held_out_size
from wrn_deploy.errors import UserError


@dataclass
class Dataset:
    """A dataset's splits. ``train`` and ``val`` (the training split less and with its held-out part)
    are drawn at first use: scoring the test split needs neither."""

    name: str
    classes: list
    full_train: object          # the whole training split; None where the data has none
    val_size: int | None
    split_seed: int
    test: object
    mean: tuple
    std: tuple
    identity: dict
    words: dict | None = None   # ImageNet: {WordNet id: its words}, where the data says them
    train_images: int | None = None   # train on this many of the training part (``fewer_training_images``),
    train_seed: int = 0               # drawn with this seed

    @cached_property
    def _parts(self) -> tuple:
        if self.full_train is None:
            return None, None
        train, val = _hold_out(self.full_train, self.val_size, self.split_seed)
        if self.train_images is not None:
            train = train.subset(np.sort(randperm(len(train), self.train_seed)[:self.train_images]))
        return train, val

    @property
    def train(self):
        return self._parts[0]

    @property
    def val(self):
        return self._parts[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.full_train, TensorSplit)

    def split(self, name: str):
        if name not in SPLITS:
            raise UserError(f"split {name!r}: choose one of {', '.join(SPLITS)}")
        if getattr(self, name) is None:
            raise UserError(f"{self.name} has no training images here (train/<class>/ in --data-dir): the {name!r} "
                            "split (training, calibration, the INT8 guard) needs them")
        return getattr(self, name)


# How a folder's content digest is made (files_digest: ids and file SHA-256); cards made before it
# recorded a digest of decoded pixels, which is not comparable.
FOLDER_DIGEST = "files/1"


def _synthetic() -> tuple:
    from wrn_deploy.data.synthetic import CLASSES, make_synthetic

    def split(name, seed):
        x, y = make_synthetic(SYNTHETIC_SIZES[name], seed)
        return TensorSplit(x.numpy(), y.numpy(), [f"synthetic/{name}/{i}" for i in range(len(y))])

    # Different seeds keep the test images disjoint from the training ones.
    return split("train", 1), split("test", 2), list(CLASSES), "built-in"


def _raw(name: str, data_dir: Path | None, progress: bool, skip_bad: bool, decode: bool) -> tuple:
    """(train, test, classes, source, images skipped as unreadable, {split: content digest}, class
    words or None). ImageNet's train is None where the data has no training images."""
    if name == "synthetic":
        train, test, classes, source = _synthetic()
        return train, test, classes, source, 0, {"train": train.digest(), "test": test.digest()}, None
    if data_dir is None:
        data_dir = Path.home() / ".cache" / "wrn-deploy" / "data" / name
    elif not Path(data_dir).is_dir():  # a typo must not become a new, empty folder
        raise UserError(f"--data-dir {data_dir} does not exist")
    data_dir = Path(data_dir)
    if name == "imagenet":
        from wrn_deploy.data import imagenet

        train, test, classes, skipped, digests, words = imagenet.load(data_dir, progress, skip_bad)
        return train, test, classes, "folder", skipped, dict(digests, digest=FOLDER_DIGEST), words
    if TABLE[name].source == "folder" or find_split_dir(data_dir, True):
        train, classes, skipped_train, train_digest = load_folder(data_dir, True, progress, skip_bad, decode)
        test, test_classes, skipped_test, test_digest = load_folder(data_dir, False, progress, skip_bad, decode)
        if test_classes != classes:
            raise UserError(f"class folders of train/ and the test split differ in {data_dir}")
        # The source's kind, not its folder: the content digests identify the images, and a folder
        # in the card would tie every later artifact to this machine.
        return (train, test, classes, "folder", skipped_train + skipped_test,
                {"train": train_digest, "test": test_digest, "digest": FOLDER_DIGEST}, None)
    if name in ("cifar10", "cifar100"):
        (train, classes), (test, _) = load_cifar(name, data_dir, True), load_cifar(name, data_dir, False)
    else:
        (train, classes), (test, _) = load_svhn(data_dir, True), load_svhn(data_dir, False)
    return train, test, classes, "torchvision", 0, {"train": train.digest(), "test": test.digest()}, None


def _check_val_size(n: int, val_size: int) -> None:
    if not 0 < val_size < n:
        raise UserError(f"--val-size must be between 1 and {n - 1} for this dataset, got {val_size}")


def _hold_out(train, val_size: int, seed: int) -> tuple:
    """(training part, held-out part) of the training split: a seeded random ``val_size`` images."""
    _check_val_size(len(train), val_size)
    perm = randperm(len(train), seed)  # torch's, number for number (data.permutation)
    return train.subset(np.sort(perm[val_size:])), train.subset(np.sort(perm[:val_size]))


def fewer_training_images(data, n: int, seed: int):
    """``data`` with ``n`` of its training images, drawn by ``seed``; its identity records ``n``
    (the training part's digest stays the whole part's: that is what later steps load)."""
    have = data.identity["train"]
    if n > have:
        raise UserError(f"--train-images {n}: the training part has {have} images (after --val-size)")
    return replace(data, train_images=n, train_seed=seed, identity={**data.identity, "train_images": n})


def _mean_std(name: str, train) -> tuple:
    info = TABLE[name]
    if info.mean is not None:
        return info.mean, info.std
    if not isinstance(train, TensorSplit):
        return IMAGENET_STATS
    import torch

    x = torch.from_numpy(train.images).float().div_(255)
    # A channel that never varies (a grey-scale set saved as RGB, say) must not divide by zero.
    return tuple(round(v, 4) for v in x.mean((0, 2, 3)).tolist()), tuple(
        max(round(v, 4), 1 / 255) for v in x.std((0, 2, 3)).tolist())


def load_dataset(name: str, data_dir=None, val_size: int | None = None, split_seed: int = 0,
                 progress: bool = True, skip_bad: bool = False, decode: bool = True) -> Dataset:
    """The dataset's splits and its identity: name, source, class names, split sizes, content digests.
    With ``skip_bad``, unreadable images are left out (and counted) instead of stopping the load.
    Without ``decode``, image folders stay on disk until a step asks for images (``Selection``), and
    statistics that would need every pixel (the mean and std of a folder without published ones) are
    left out: only training needs them."""
    if name not in TABLE:
        raise UserError(f"unknown dataset {name!r}; valid: {', '.join(NAMES)}")
    train_full, test, classes, source, skipped, digests, words = _raw(name, data_dir, progress, skip_bad, decode)
    if train_full is None:  # ImageNet's validation images alone: enough to score a model
        val_size, n_train, n_val = None, 0, 0
    else:
        if val_size is None:
            val_size = held_out_size(name, len(train_full))
        _check_val_size(len(train_full), val_size)
        n_train, n_val = len(train_full) - val_size, val_size
    identity = {"name": name, "source": source, "classes": len(classes), "class_names": list(classes),
                "train": n_train, "val": n_val, "test": len(test), "val_size": val_size,
                "split_seed": split_seed, "train_sha256": digests["train"], "test_sha256": digests["test"],
                "skipped_unreadable": skipped, **({"digest": digests["digest"]} if "digest" in digests else {})}
    if skipped:
        import sys

        print(f"warning: skipped {skipped} unreadable image(s) of {name} (--skip-bad-images)", file=sys.stderr)
    ds = Dataset(name, classes, train_full, val_size, split_seed, test, None, None, identity, words)
    if decode:
        ds.mean, ds.std = _mean_std(name, ds.train)
    return ds


@dataclass
class Selection:
    """Images chosen for a model: one split of a dataset, at the model's input size."""

    dataset: str
    split: str
    part: object        # TensorSplit or FolderSplit
    size: int           # the model's input size in pixels
    identity: dict
    classes: list
    preprocess: object = None  # card.Preprocess for large images; None: the default rule for ``size``

    def __len__(self) -> int:
        return len(self.part)

    @property
    def ids(self) -> list:
        return self.part.ids

    @property
    def labels(self) -> np.ndarray:
        return self.part.labels

    def first(self, n: int) -> "Selection":
        return self.subset(np.arange(min(n, len(self))))

    def subset(self, index) -> "Selection":
        index = np.asarray(index, dtype=np.int64)
        return Selection(self.dataset, self.split, self.part.subset(index), self.size, self.identity, self.classes,
                         self.preprocess)

    def images(self) -> np.ndarray:
        """Float32 RGB images in [0, 1], N x 3 x size x size (large images resized and centre-cropped
        as ``preprocess`` says)."""
        return np.concatenate(list(self.chunks(64)))

    def chunks(self, n: int):
        """The images ``n`` at a time, as float32 arrays in [0, 1]. Small images are held as uint8
        (a folder's decoded once, at the first ask); large ones are decoded a batch at a time, by
        torch's DataLoader. Float copies of them all exist only if the caller keeps them."""
        if isinstance(self.part, TensorSplit) or self.part.small:
            for i in range(0, len(self), n):
                yield unit_float(self.part.images[i:i + n])
            return
        from wrn_deploy.data.batches import batches

        for x, _ in batches(self.part, n, "cpu", size=self.size, preprocess=self.preprocess,
                            workers=loader_workers(len(self))):
            yield x.numpy()


def loader_workers(images: int) -> int:
    """DataLoader workers for decoding ``images`` large images: none for a few, else up to 4."""
    import os

    return 0 if images < 256 else min(4, os.cpu_count() or 1)


def for_card(card, split: str, data: str | None = None, data_dir=None, progress: bool = False,
             allow_other_data: bool = False, skip_bad: bool = False) -> Selection:
    """The ``split`` ('train', 'val' or 'test') of the card's dataset, or of ``data`` when given.

    On the card's own dataset, 'val' and 'train' are exactly the training run's held-out and training
    parts (the card records the held-out size and seed). The class names must be the model's, in
    order; other data (another dataset, or images whose digest differs from the card's record) is
    refused unless ``allow_other_data``.
    """
    ident = card.dataset or {}
    name = data or ident.get("name")
    if not name:
        raise UserError("the model's card names no dataset: pass --data")
    same = ident.get("name") == name
    ds = load_dataset(name, data_dir, ident.get("val_size") if same else None,
                      ident.get("split_seed", 0) if same else 0, progress=progress, skip_bad=skip_bad, decode=False)
    check_identity(card, ds, split, allow_other_data)
    part = ds.split(split)
    shape = _held_shape(part)
    if shape and shape != (3, card.input_size, card.input_size):
        c, h, w = shape
        raise UserError(f"{name} images are {c}x{h}x{w}; the model takes 3x{card.input_size}x{card.input_size}")
    if shape is None and len(part) and card.preprocess.resize is None:
        raise UserError(f"{name} images are large (resized at use), but the model's card takes its "
                        f"{card.input_size}x{card.input_size} images as they are (its preprocess has no resize)")
    return Selection(name, split, part, card.input_size, ds.identity, ds.classes, card.preprocess)


def _held_shape(part) -> tuple | None:
    """C x H x W of images used at their own size (in memory, or small ones on disk); None for large
    images, which are resized to the model's input."""
    if isinstance(part, TensorSplit):
        return tuple(part.images.shape[1:])
    if part.small and len(part):
        f = part.facts[part.indices[0]]
        return 3, f.height, f.width
    return None


def classes_differ(theirs, ours) -> str | None:
    """How the data's class names differ from the model's, or None when they are the same, in order."""
    theirs, ours = list(theirs), list(ours)
    if theirs == ours:
        return None
    if len(theirs) != len(ours):
        return f"has {len(theirs)} classes; the model has {len(ours)} classes"
    i = next(i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b)
    return f"names class {i} {theirs[i]!r}; the model calls it {ours[i]!r} (labels would shift)"


def check_identity(card, ds: Dataset, split: str, allow_other_data: bool) -> None:
    """The data must be what the model knows: its class names in order, always; its images (the
    dataset's name and the split's content digest in the card), unless ``allow_other_data``."""
    if ds.name == "imagenet":  # WordNet ids; a card may name them by their words instead
        from wrn_deploy.data.imagenet import classes_differ as imagenet_differ

        differ = imagenet_differ(ds.classes, card.classes, ds.words)
    else:
        differ = classes_differ(ds.classes, card.classes)
    if differ:
        raise UserError(f"{ds.name} {differ}")
    ident = card.dataset or {}
    key = "test_sha256" if split == "test" else "train_sha256"
    if ident.get("name") and ident["name"] != ds.name:
        problem = f"the model was trained on {ident['name']}; these are {ds.name} images"
    elif (ident.get(key) and ds.identity.get("digest") and ident.get("digest") != ds.identity["digest"]
          and str(ident.get("source", "")).startswith("folder")):
        problem = (f"the model's card records the {ds.name} images by an older digest (decoded pixels, before "
                   f"wrn-deploy 0.4) that this version no longer computes")
    elif ident.get(key) and ident[key] != ds.identity[key]:
        problem = (f"the {ds.name} {'test' if split == 'test' else 'training'} images differ from those the "
                   f"model's card records (content digest {ds.identity[key][:12]}, card {ident[key][:12]})")
    else:
        return
    if not allow_other_data:
        raise UserError(f"{problem}; pass --allow-other-data to use them anyway")
