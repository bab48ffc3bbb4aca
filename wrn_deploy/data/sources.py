"""Where images come from: torchvision sets, ImageFolder trees and the built-in synthetic set.

Small images (CIFAR, SVHN, 32x32 folders) load into one uint8 tensor, so training can keep the
whole set on the GPU and augment there. Larger images (ImageNet) stay on disk behind a DataLoader.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wrn_deploy.errors import UserError

SMALL_MAX = 64  # folders whose images are at most this many pixels a side load into memory
IMG_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class TensorSplit:
    """A split held in memory: uint8 images (N,3,H,W), int64 labels and stable image ids."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: list
    # Copies of the images and labels on each device they were asked for on (owned by this split,
    # so they live and die with it; training reads the same split every epoch).
    _on_device: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    def on(self, device) -> tuple:
        """(uint8 images, labels) on ``device``, moved there once."""
        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = (self.images.to(device), self.labels.to(device))
        return self._on_device[key]

    def subset(self, index: torch.Tensor) -> "TensorSplit":
        return TensorSplit(self.images[index], self.labels[index], [self.ids[i] for i in index.tolist()])

    def digest(self) -> str:
        h = hashlib.sha256(self.images.numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        return h.hexdigest()


@dataclass
class FolderSplit:
    """A split left on disk (large images): a torchvision ImageFolder and the indices it uses."""

    folder: object  # torchvision.datasets.ImageFolder
    indices: list | None = None

    def __post_init__(self):
        if self.indices is None:
            self.indices = list(range(len(self.folder.samples)))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([self.folder.samples[i][1] for i in self.indices])

    @property
    def ids(self) -> list:
        root = Path(self.folder.root)
        return [str(Path(self.folder.samples[i][0]).relative_to(root.parent)) for i in self.indices]

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.ids).encode()).hexdigest()


def _need(data_dir: Path, what: str, name: str):
    raise UserError(
        f"{name} not found in --data-dir {data_dir} (expected {what}); it downloads by itself only "
        f"when this machine is online"
    )


def _torchvision_set(cls, data_dir: Path, name: str, expected: str, **kw):
    try:
        return cls(str(data_dir), download=False, **kw)
    except (RuntimeError, FileNotFoundError):
        pass
    try:
        return cls(str(data_dir), download=True, **kw)
    except Exception:  # noqa: BLE001 - any download failure means the same thing to the user
        _need(data_dir, expected, name)


def load_cifar(name: str, data_dir: Path, train: bool) -> tuple[TensorSplit, list]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = "cifar-10-batches-py/" if name == "cifar10" else "cifar-100-python/"
    ds = _torchvision_set(cls, data_dir, name, folder, train=train)
    images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    split = "train" if train else "test"
    ids = [f"{name}/{split}/{i}" for i in range(len(ds.targets))]
    return TensorSplit(images, torch.tensor(ds.targets, dtype=torch.int64), ids), list(ds.classes)


def load_svhn(data_dir: Path, train: bool) -> tuple[TensorSplit, list]:
    from torchvision import datasets

    split = "train" if train else "test"
    ds = _torchvision_set(datasets.SVHN, data_dir, "svhn", f"{split}_32x32.mat", split=split)
    ids = [f"svhn/{split}/{i}" for i in range(len(ds.labels))]
    images = torch.from_numpy(np.ascontiguousarray(ds.data))
    return TensorSplit(images, torch.from_numpy(ds.labels.astype(np.int64)), ids), [str(i) for i in range(10)]


def find_split_dir(root: Path, train: bool) -> Path | None:
    names = ("train",) if train else ("val", "test")
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def load_folder(root: Path, train: bool, progress: bool = True) -> tuple[object, list]:
    """An ImageFolder split: a TensorSplit for small images, else a FolderSplit."""
    split_dir = find_split_dir(root, train)
    if split_dir is None:
        want = "train/<class>/*" if train else "val/<class>/* or test/<class>/*"
        _need(root, want, "an image folder")
    from torchvision import datasets

    try:
        folder = datasets.ImageFolder(str(split_dir))
    except (FileNotFoundError, RuntimeError) as e:
        raise UserError(f"cannot read image folder {split_dir}: {e}") from None
    from PIL import Image

    with Image.open(folder.samples[0][0]) as first:
        small = max(first.size) <= SMALL_MAX
    if not small:
        return FolderSplit(folder), list(folder.classes)
    return _decode_all(folder, split_dir.parent, progress), list(folder.classes)


def _decode_all(folder, root: Path, progress: bool) -> TensorSplit:
    from PIL import Image
    from tqdm import tqdm

    first = None
    arrays, labels, ids = [], [], []
    it = tqdm(folder.samples, desc=f"decoding {Path(folder.root).name}", unit="img",
              disable=not progress, leave=False)
    for path, label in it:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        first = first or a.shape
        if a.shape != first:
            raise UserError(f"{path} is {a.shape[1]}x{a.shape[0]}, others are {first[1]}x{first[0]}")
        arrays.append(a)
        labels.append(label)
        ids.append(str(Path(path).relative_to(root)))
    images = torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())
    return TensorSplit(images, torch.tensor(labels, dtype=torch.int64), ids)
