"""Batches for training and evaluation: float images in [0, 1] and int64 labels on ``device``.

In-memory splits are moved to the device once (each split keeps its copy) and augmented there
(random crop from 4-pixel reflection padding, horizontal flip), so a GPU is never waiting for a CPU data pipeline. Random
choices come from a CPU generator seeded by the caller, so a batch sequence is reproducible.
"""

import torch
import torch.nn.functional as F

from wrn_deploy.data.sources import FolderSplit, TensorSplit

PAD = 4  # pixels of reflection padding before the random crop (CIFAR recipe)


def draw_crop_flip(n: int, gen: torch.Generator) -> tuple:
    """Random (row offset, column offset, flip) for ``n`` images."""
    dy = torch.randint(0, 2 * PAD + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * PAD + 1, (n,), generator=gen)
    return dy, dx, torch.rand(n, generator=gen) < 0.5


def crop_flip(x: torch.Tensor, dy, dx, flip) -> torch.Tensor:
    """Crop each image at its offset from the reflection-padded batch, then flip where asked."""
    n, c, h, w = x.shape
    dy, dx, flip = dy.to(x.device), dx.to(x.device), flip.to(x.device)
    padded = F.pad(x, (PAD, PAD, PAD, PAD), mode="reflect")
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = torch.arange(w, device=x.device).expand(n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + dx[:, None]
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows, cols.view(n, 1, 1, w)]


def _order(n: int, shuffle: bool, gen: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=gen) if shuffle else torch.arange(n)


def tensor_batches(split: TensorSplit, batch_size: int, device, *, shuffle=False, augment=False,
                   seed=0, rank=0, world=1, drop_last=False):
    """Yield (images float [0,1], labels). With world > 1, each rank takes every world-th sample of
    the global batch, so the ranks together see exactly what one process would."""
    gen = torch.Generator().manual_seed(seed)
    images, labels = split.on(device)
    order = _order(len(split), shuffle, gen)
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        # Draw the augmentation for the whole global batch, so N processes see what one would.
        params = draw_crop_flip(len(idx), gen) if augment else None
        idx = idx[rank::world].to(device)
        x = images[idx].float().div_(255)
        if augment:
            x = crop_flip(x, *(p[rank::world] for p in params))
        yield x, labels[idx]


def eval_transform(size: int, preprocess=None):
    """PIL image -> float tensor in [0, 1], 3 x size x size, by the card's ``preprocess``
    (``data.preprocess``; ``None``: the default rule for ``size``)."""
    from wrn_deploy.card import default_preprocess
    from wrn_deploy.data.preprocess import pil_transform

    return pil_transform(size, preprocess or default_preprocess(size))


def folder_batches(split: FolderSplit, batch_size: int, device, *, shuffle=False, augment=False,
                   seed=0, rank=0, world=1, drop_last=False, workers=4, size=224, preprocess=None):
    """The DataLoader path for large images: random resized crops for training, else the card's
    ``preprocess`` (``eval_transform``)."""
    from torch.utils.data import DataLoader
    from torchvision import transforms as T

    if augment:
        tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor()])
    else:
        tf = eval_transform(size, preprocess)
    split.folder.transform = tf
    order = _order(len(split), shuffle, torch.Generator().manual_seed(seed))
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    index = [split.indices[i] for i in order[:stop].tolist()]
    per_rank = [index[s:s + batch_size][rank::world] for s in range(0, len(index), batch_size)]
    torch.manual_seed(seed)  # the workers' random crops
    loader = DataLoader(split.folder, batch_sampler=per_rank, num_workers=workers,
                        pin_memory=torch.device(device).type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def batches(split, batch_size: int, device, **kw):
    if isinstance(split, TensorSplit):
        kw.pop("workers", None)
        kw.pop("size", None)
        kw.pop("preprocess", None)
        return tensor_batches(split, batch_size, device, **kw)
    return folder_batches(split, batch_size, device, **kw)
