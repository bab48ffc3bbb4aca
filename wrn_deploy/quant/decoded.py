"""Calibration and guard images decoded once per process, kept as uint8 for the next quantize step.

The pipeline quantizes one FP32 model for two or three targets in one process, each on the same
calibration and held-out images. Decoding a folder of large images (and resizing them) costs more
than anything else those steps do with them, so the decoded pixels are kept, as uint8, in a small
cache bounded in entries and bytes. An entry is found by what decides the decode: the files (their
ids and content digests, ``FolderSplit.digest``: a changed or renamed file is another key), whether
they are used at their own size, and the model's input size and preprocess. uint8 is exact: the
float images every step sees are these pixels divided by 255, as the decoder's own conversion does.
"""

from collections import OrderedDict

import numpy as np

from wrn_deploy.data.preprocess import to_pixels, unit_float
from wrn_deploy.data.sources import TensorSplit
from wrn_deploy.limits import BATCH, DECODED_KEEP_BYTES, DECODED_KEEP_ENTRIES

_KEPT = OrderedDict()  # key -> uint8 array N x 3 x H x W, the most recently used last


def key(selection) -> tuple:
    """What decides the pixels of ``selection``'s images (for images on disk)."""
    part = selection.part
    return part.digest(), part.small, selection.size, repr(selection.preprocess)


def uint8_images(selection) -> np.ndarray:
    """Every image of ``selection`` as uint8 N x 3 x H x W: decoded once a process while it fits the
    cache, then shared by the steps that ask again."""
    part = selection.part
    if isinstance(part, TensorSplit):  # held in memory already
        return part.images
    k = key(selection)
    if k in _KEPT:
        _KEPT.move_to_end(k)
        share(selection)
        return _KEPT[k]
    if part.small:
        images = part.images
    else:
        images = np.concatenate([to_pixels(x) for x in selection.chunks(BATCH)])
    _keep(k, images)
    return images


def share(selection) -> None:
    """Hand a split of small images the pixels kept for it, if any: its image digests (the
    calibration manifest's) are digests of its pixels, and read these instead of a new decode."""
    part = selection.part
    if not isinstance(part, TensorSplit) and part.small and key(selection) in _KEPT:
        part._pixels = _KEPT[key(selection)]


def _keep(k: tuple, images: np.ndarray) -> None:
    if images.nbytes > DECODED_KEEP_BYTES:
        return
    _KEPT[k] = images
    while len(_KEPT) > DECODED_KEEP_ENTRIES or sum(v.nbytes for v in _KEPT.values()) > DECODED_KEEP_BYTES:
        _KEPT.popitem(last=False)


def calibration_chunks(selection):
    """``chunks(n)`` for calibration: float32 N x 3 x H x W arrays in [0, 1] from the uint8 images
    above. Large images too many to keep (``DECODED_KEEP_BYTES``) are streamed as before: decoded a
    batch at a time, at every pass, so memory still follows the batch."""
    part = selection.part
    if not isinstance(part, TensorSplit) and not part.small and \
            len(selection) * 3 * selection.size ** 2 > DECODED_KEEP_BYTES:
        return selection.chunks
    images = uint8_images(selection)

    def chunks(n: int):
        for i in range(0, len(images), n):
            yield unit_float(images[i:i + n])
    return chunks


def forget() -> None:
    """Drop every kept image (tests; a long-lived process done quantizing)."""
    _KEPT.clear()
