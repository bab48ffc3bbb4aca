"""Datasets by name: ``synthetic`` (built in), ``cifar10``, ``cifar100``, ``svhn``, ``imagenet`` and
``imagefolder``. Each loads as train / validation (held out of train, fixed seed) / test splits."""

from dataclasses import dataclass
from pathlib import Path

import torch

from wrn_deploy.data.sources import (FolderSplit, TensorSplit, find_split_dir, load_cifar, load_folder,
                                     load_svhn)
from wrn_deploy.constants import DATASETS
from wrn_deploy.errors import UserError

# Per-channel mean/std of the training images (RGB, in [0, 1]).
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
SYNTHETIC_SIZES = {"train": 10000, "test": 2000}
DEFAULT_VAL = {"synthetic": 1000}


@dataclass
class Dataset:
    name: str
    classes: list
    train: object
    val: object
    test: object
    mean: tuple
    std: tuple
    identity: dict

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, TensorSplit)


def _synthetic() -> tuple:
    from wrn_deploy.data.synthetic import CLASSES, make_synthetic

    def split(name, seed):
        x, y = make_synthetic(SYNTHETIC_SIZES[name], seed)
        return TensorSplit(x, y, [f"synthetic/{name}/{i}" for i in range(len(y))])

    # Different seeds keep the test images disjoint from the training ones.
    return split("train", 1), split("test", 2), list(CLASSES), "built-in"


def _raw(name: str, data_dir: Path | None, progress: bool) -> tuple:
    if name == "synthetic":
        return _synthetic()
    if data_dir is None:
        data_dir = Path.home() / ".cache" / "wrn-deploy" / "data" / name
    data_dir = Path(data_dir)
    if name in ("imagenet", "imagefolder") or find_split_dir(data_dir, True):
        train, classes = load_folder(data_dir, True, progress)
        test, test_classes = load_folder(data_dir, False, progress)
        if test_classes != classes:
            raise UserError(f"class folders of train/ and the test split differ in {data_dir}")
        return train, test, classes, f"folder:{data_dir.resolve()}"
    if name in ("cifar10", "cifar100"):
        (train, classes), (test, _) = load_cifar(name, data_dir, True), load_cifar(name, data_dir, False)
    else:
        (train, classes), (test, _) = load_svhn(data_dir, True), load_svhn(data_dir, False)
    return train, test, classes, f"torchvision:{data_dir.resolve()}"


def _hold_out(train, val_size: int, seed: int) -> tuple:
    n = len(train)
    if not 0 < val_size < n:
        raise UserError(f"--val-size must be between 1 and {n - 1} for this dataset, got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:val_size].sort().values, perm[val_size:].sort().values
    if isinstance(train, TensorSplit):
        return train.subset(train_idx), train.subset(val_idx)
    return (FolderSplit(train.folder, train_idx.tolist()), FolderSplit(train.folder, val_idx.tolist()))


def _mean_std(name: str, train) -> tuple:
    if name in NORMALIZATION:
        return NORMALIZATION[name]
    if not isinstance(train, TensorSplit):
        return NORMALIZATION["imagenet"]
    x = train.images.float().div_(255)
    return tuple(round(v, 4) for v in x.mean((0, 2, 3)).tolist()), tuple(
        round(v, 4) for v in x.std((0, 2, 3)).tolist())


def load_dataset(name: str, data_dir=None, val_size: int | None = None, split_seed: int = 0,
                 progress: bool = True) -> Dataset:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    train_full, test, classes, source = _raw(name, data_dir, progress)
    if val_size is None:
        val_size = DEFAULT_VAL.get(name, min(5000, len(train_full) // 10))
    train, val = _hold_out(train_full, val_size, split_seed)
    mean, std = _mean_std(name, train)
    identity = {"name": name, "source": source, "classes": len(classes), "train": len(train),
                "val": len(val), "test": len(test), "val_size": val_size, "split_seed": split_seed,
                "train_sha256": train_full.digest(), "test_sha256": test.digest()}
    return Dataset(name, classes, train, val, test, mean, std, identity)
