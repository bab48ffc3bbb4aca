"""Where images come from: torchvision sets, ImageFolder trees and the built-in synthetic set.

Small images (CIFAR, SVHN, 32x32 folders) load into one uint8 array, so training can keep the
whole set on the GPU and augment there. Larger images (ImageNet) stay on disk behind a DataLoader.
Everything here is NumPy: torch is imported only by what runs PyTorch (training, the DataLoader of
large images, torchvision's dataset files), so commands that only run ONNX Runtime start without it.
"""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wrn_deploy.errors import UserError

SMALL_MAX = 64  # folders whose images are at most this many pixels a side load into memory
IMG_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class TensorSplit:
    """A split held in memory: uint8 images (N,3,H,W), int64 labels (NumPy arrays) and stable image ids."""

    images: np.ndarray
    labels: np.ndarray
    ids: list
    # Copies of the images and labels on each device they were asked for on (owned by this split,
    # so they live and die with it; training reads the same split every epoch).
    _on_device: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):  # CPU tensors are taken too: NumPy shares their memory
        self.images, self.labels = np.asarray(self.images), np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def on(self, device) -> tuple:
        """(uint8 images, labels) as tensors on ``device``, moved there once."""
        import torch

        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = (torch.from_numpy(self.images).to(device), torch.from_numpy(self.labels).to(device))
        return self._on_device[key]

    def subset(self, index) -> "TensorSplit":
        index = np.asarray(index, dtype=np.int64)
        return TensorSplit(self.images[index], self.labels[index], [self.ids[i] for i in index.tolist()])

    def digest(self) -> str:
        h = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()

    def image_digests(self) -> list:
        """SHA-256 of each image's pixels (uint8, C x H x W): equal images have equal digests,
        whatever file or id they came from."""
        return pixel_digests(self.images)


def pixel_digests(images: np.ndarray) -> list:
    """SHA-256 of each uint8 C x H x W image's pixels."""
    return [hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() for x in images]


@dataclass
class FolderSplit:
    """A split left on disk: a FileList (paths and labels, as ImageFolder lists them), the indices it uses and
    what the file index knows of each file. Images are decoded only when asked for: small ones
    (``small``) at their own size, large ones resized and centre-cropped (``batches``)."""

    folder: object  # FileList
    indices: list | None = None
    facts: list | None = None   # file_index.FileFacts per sample of ``folder``
    small: bool = False
    _pixels: object = field(default=None, repr=False, compare=False)  # small images, once decoded

    def __post_init__(self):
        if self.indices is None:
            self.indices = list(range(len(self.folder.samples)))

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, index) -> "FolderSplit":
        """The images at positions ``index`` of this split."""
        index = index.tolist() if hasattr(index, "tolist") else index
        return FolderSplit(self.folder, [self.indices[i] for i in index], self.facts, self.small)

    @property
    def labels(self) -> np.ndarray:
        return np.array([self.folder.samples[i][1] for i in self.indices], dtype=np.int64)

    @property
    def ids(self) -> list:
        return [sample_id(self.folder.root, self.folder.samples[i][0]) for i in self.indices]

    def digest(self) -> str:
        """SHA-256 over each image's id (its path in the dataset) and file content: a renamed,
        changed, added or removed image changes it; no image is decoded."""
        return files_digest(self.ids, [self.facts[i].sha256 for i in self.indices])

    def image_digests(self) -> list:
        """Per image: SHA-256 of its pixels for small images (as for images held in memory, so the
        same picture matches whatever file it came from), of its file's bytes for large ones."""
        if self.small:
            return pixel_digests(self.images)
        return [self.facts[i].sha256 for i in self.indices]

    @property
    def images(self) -> np.ndarray:
        """Every image of a small-image split as uint8 N x 3 x H x W (as TensorSplit holds them),
        decoded on first use and kept: digests and inference then read the same decode."""
        if not self.small:
            raise AttributeError("large images are resized at use: take them through data.batches")
        if self._pixels is None:
            arrays = [decode_rgb(self.folder.samples[i][0]) for i in self.indices]
            self._pixels = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
        return self._pixels


def sample_id(split_root: str, path: str) -> str:
    """An image's id: its path from the dataset folder (``train/cat/1.png``). ImageFolder's paths
    all start with the split folder as given, however it was spelled (``.``, ``..``, links)."""
    return os.path.basename(os.path.normpath(split_root)) + "/" + path[len(split_root):].lstrip(os.sep)


def files_digest(ids: list, shas: list) -> str:
    # Fixed-length fields (the id's own hash, the file's), so no file name can imitate two entries.
    h = hashlib.sha256()
    for i, sha in zip(ids, shas):
        h.update(hashlib.sha256(i.encode("utf-8", "surrogateescape")).digest() + bytes.fromhex(sha))
    return h.hexdigest()


def _need(data_dir: Path, what: str, name: str):
    hint = ("pass --data-dir with train/ and test/ class folders" if name == "an image folder"
            else "pass --data-dir where it lives (it downloads by itself only when this machine is online)")
    raise UserError(f"{name} not found in {data_dir} (expected {what}); {hint}")


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
    images = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))
    split = "train" if train else "test"
    ids = [f"{name}/{split}/{i}" for i in range(len(ds.targets))]
    return TensorSplit(images, np.asarray(ds.targets, dtype=np.int64), ids), list(ds.classes)


def load_svhn(data_dir: Path, train: bool) -> tuple[TensorSplit, list]:
    from torchvision import datasets

    split = "train" if train else "test"
    ds = _torchvision_set(datasets.SVHN, data_dir, "svhn", f"{split}_32x32.mat", split=split)
    ids = [f"svhn/{split}/{i}" for i in range(len(ds.labels))]
    images = np.ascontiguousarray(ds.data)
    return TensorSplit(images, ds.labels.astype(np.int64), ids), [str(i) for i in range(10)]


def find_split_dir(root: Path, train: bool) -> Path | None:
    names = ("train",) if train else ("val", "test")
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def check_links(split_dir: Path) -> None:
    """Refuse links that would change which images a class has: folder links (they can loop, as
    ``cat/loop -> ..`` does, or copy a class into another) and file links leaving the dataset."""
    root = split_dir.parent.resolve()
    pending = [split_dir]
    while pending:  # scandir's entries know whether they are links without another stat per file
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    _check_link(Path(entry.path), root)
                elif entry.is_dir():
                    pending.append(entry.path)


def _check_link(p: Path, root: Path) -> None:
    target = Path(os.path.realpath(p))
    if p.is_dir():
        raise UserError(f"{p} is a link to the folder {target}; class folders must be real folders")
    if root not in target.parents:
        raise UserError(f"{p} links outside the dataset folder {root} (to {target}); refusing it")


class BadImage(UserError):
    def __init__(self, path, error):
        from PIL import Image

        if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            why = f"it has more pixels than PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS})"
        else:
            why = str(error).splitlines()[0] if str(error) else type(error).__name__
        super().__init__(f"cannot decode image {path}: {why} (--skip-bad-images skips such files)")
        self.path = path


def decode_rgb(path) -> np.ndarray:
    """An image file as an H x W x 3 uint8 array; PIL's decompression-bomb limit stays on and is an
    error, not a warning."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImage(path, e) from None


def _kind_of_sizes(folder, facts: list) -> bool:
    """True when the images are small (held at their own size), False when large; a mix is an error.
    Sizes come from the file index (headers), so every image is looked at without decoding it."""
    small, large = None, None
    for (path, _), f in zip(folder.samples, facts):
        if f.error:
            continue
        if max(f.width, f.height) <= SMALL_MAX:
            small = small or (path, f.width, f.height)
        else:
            large = large or (path, f.width, f.height)
        if small and large:
            raise UserError(f"images of very different sizes in {folder.root}: {small[0]} is {small[1]}x{small[2]}, "
                            f"{large[0]} is {large[1]}x{large[2]}; give one size per dataset")
    return large is None


def load_folder(root: Path, train: bool, progress: bool = True, skip_bad: bool = False,
                decode: bool = True, large: bool = False) -> tuple[object, list, int, str]:
    """An ImageFolder split, its classes, the number of unreadable images skipped (with ``skip_bad``;
    otherwise the first is an error) and its content digest. Small images come as a TensorSplit when
    ``decode`` (training uses them all), else every split stays on disk as a FolderSplit. ``large``:
    every image is resized at use, whatever its size (ImageNet, whose files range from tiny to huge)."""
    split_dir = find_split_dir(root, train)
    if split_dir is None:
        want = "train/<class>/*" if train else "val/<class>/* or test/<class>/*"
        _need(root, want, "an image folder")
    check_links(split_dir)
    try:
        folder = class_folders(split_dir)
    except OSError as e:
        raise UserError(f"cannot read image folder {split_dir}: {str(e).splitlines()[0]}") from None
    return split_of(folder, split_dir, progress, skip_bad, decode, large)


# What torchvision's ImageFolder takes for an image (its IMG_EXTENSIONS), compared lower-case.
FOLDER_EXT = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def class_folders(split_dir: Path) -> "FileList":
    """The samples of ``split_dir``'s class folders exactly as torchvision's ``ImageFolder`` lists
    them (classes sorted; under each, ``os.walk`` following links, sorted, files sorted, image
    extensions only), without importing torch: the order fixes the labels and the content digest.
    tests/data/test_sources.py holds it equal to ImageFolder's."""
    root = str(split_dir)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if not classes:
        raise UserError(f"no class folder in {split_dir} (expected {split_dir}/<class>/<image>)")
    samples = []
    for label, name in enumerate(classes):
        for where, _, files in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            samples += [(os.path.join(where, f), label) for f in sorted(files) if f.lower().endswith(FOLDER_EXT)]
    empty = sorted(set(classes) - {classes[label] for _, label in samples})
    if empty:
        raise UserError(f"class folder(s) {', '.join(empty)} of {split_dir} hold no image "
                        f"(files ending {', '.join(FOLDER_EXT)})")
    return FileList(root, samples, classes)


class FileList:
    """Labelled image files (a split's class folders, or ImageNet's flat validation folder) with the
    attributes of torchvision's ImageFolder that FolderSplit and the DataLoader use (a map-style
    dataset: the DataLoader needs only ``len`` and indexing)."""

    def __init__(self, root, samples: list, classes: list):
        self.root, self.samples, self.imgs, self.classes = str(root), samples, samples, list(classes)
        self.targets = [t for _, t in samples]
        self.loader, self.transform = decode_rgb_pil, None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, target = self.samples[i]
        image = self.loader(path)
        return (self.transform(image) if self.transform else image), target


def load_files(split_dir: Path, samples: list, classes: list, progress: bool = True,
               skip_bad: bool = False) -> tuple[object, list, int, str]:
    """``load_folder`` for a list of (path, label) in ``split_dir``: always resized at use."""
    check_links(split_dir)
    return split_of(FileList(split_dir, samples, classes), split_dir, progress, skip_bad, False, True)


def split_of(folder, split_dir: Path, progress: bool, skip_bad: bool, decode: bool, large: bool) -> tuple:
    from wrn_deploy.card import check_class_names
    from wrn_deploy.data import file_index

    check_class_names(folder.classes, f"class folders of {split_dir}")  # before any image is read
    facts = file_index.facts([p for p, _ in folder.samples], progress, f"indexing {split_dir.name}")
    skipped = _drop_unreadable(folder, facts, skip_bad)
    facts = [f for f in facts if not f.error]
    if not facts:
        raise UserError(f"no readable image in {split_dir}")
    small = False if large else _kind_of_sizes(folder, facts)
    folder.loader = decode_rgb_pil
    split = FolderSplit(folder, facts=facts, small=small)
    if small and (decode or skip_bad):
        # Training uses every image; --skip-bad-images must know which decode (a header can read
        # where the pixels do not), so both decode now, and the digest covers what was kept.
        tensor, kept = _decode_all(split, progress, skip_bad)
        split = split.subset(kept)
        assert len(split) == len(tensor)
        bad = len(folder.samples) - len(kept)
        return (tensor if decode else split), list(folder.classes), skipped + bad, split.digest()
    if small:
        _check_one_size(split)
    return split, list(folder.classes), skipped, split.digest()


def decode_rgb_pil(path):
    from PIL import Image

    return Image.fromarray(decode_rgb(path))


def _drop_unreadable(folder, facts: list, skip_bad: bool) -> int:
    """Files whose header does not read (from the file index) are an error, or dropped."""
    bad = [(path, f.error) for (path, _), f in zip(folder.samples, facts) if f.error]
    if bad and not skip_bad:
        raise UserError(f"cannot decode image {bad[0][0]}: {bad[0][1]} (--skip-bad-images skips such files)")
    keep = [s for s, f in zip(folder.samples, facts) if not f.error]
    folder.samples = folder.imgs = keep
    folder.targets = [t for _, t in keep]
    return len(bad)


def _check_one_size(split: FolderSplit) -> None:
    first = None
    for (path, _), f in zip(split.folder.samples, split.facts):
        first = first or (f.width, f.height)
        if (f.width, f.height) != first:
            raise UserError(f"{path} is {f.width}x{f.height}, others are {first[0]}x{first[1]}; "
                            "give one size per dataset")


def _decode_all(split: FolderSplit, progress: bool, skip_bad: bool) -> tuple:
    """(TensorSplit of every image that decodes, the positions kept in ``split``)."""
    from tqdm import tqdm

    first = None
    arrays, kept = [], []
    paths = [split.folder.samples[i][0] for i in split.indices]
    with tqdm(paths, desc=f"decoding {Path(split.folder.root).name}", unit="img",
              disable=not progress, leave=False) as it:  # closed (and cleared) on errors too
        for pos, path in enumerate(it):
            try:
                a = decode_rgb(path)
            except BadImage:
                if not skip_bad:
                    raise
                continue
            first = first or a.shape
            if a.shape != first:
                raise UserError(f"{path} is {a.shape[1]}x{a.shape[0]}, others are {first[1]}x{first[0]}; "
                                "give one size per dataset")
            arrays.append(a)
            kept.append(pos)
    if not arrays:
        raise UserError(f"no readable image in {split.folder.root}")
    part = split.subset(kept)
    images = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
    return TensorSplit(images, part.labels, part.ids), kept
