"""The datasets wrn-deploy knows, in one table (no heavy imports: the CLI reads it at start-up)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    source: str                 # built-in | torchvision | folder
    recipe_family: str          # whose zoo recipe it borrows when no recipe names it
    mean: tuple | None = None   # published per-channel RGB statistics in [0, 1]; None: measured
    std: tuple | None = None
    default_val: int | None = None  # images held out of train; None: min(5000, a tenth), at least one
    train_images: int | None = None  # the training split's size, where it is fixed (None: a folder's own)


_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TABLE = {d.name: d for d in (
    DatasetInfo("synthetic", "built-in", "synthetic", default_val=1000),
    DatasetInfo("cifar10", "torchvision", "cifar10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                train_images=50000),
    DatasetInfo("cifar100", "torchvision", "cifar10", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                train_images=50000),
    DatasetInfo("svhn", "torchvision", "svhn", (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                train_images=73257),
    DatasetInfo("imagenet", "folder", "imagenet", *_IMAGENET),
    DatasetInfo("imagefolder", "folder", "cifar10"),
)}
NAMES = tuple(TABLE)


def held_out_size(name: str, train_images: int | None = None) -> int | None:
    """Images held out of ``name``'s training split by default (None where its size is not known yet)."""
    info = TABLE[name]
    n = train_images or info.train_images
    if info.default_val:
        return info.default_val
    return min(5000, max(1, n // 10)) if n else None
SPLITS = ("train", "val", "test")  # val: the part of the training split held out for validation
IMAGENET_STATS = _IMAGENET
SYNTHETIC_SIZES = {"train": 10000, "test": 2000}
