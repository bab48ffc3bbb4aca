"""The card's preprocessing rule as torchvision transforms: one image file to the model's input.

``card.preprocess`` says it (``wrn_deploy.card.Preprocess``): the shorter side resized to
``resize`` pixels with ``interpolation`` (Pillow's antialiased filter, as torchvision's ``Resize``
on a PIL image), then ``CenterCrop(input_size)``; without a resize the image must already be
``input_size`` square. The C++ program (cpp/src/image.cpp) implements the same rule from the same
card fields, and examples/triton_client.py calls ``image_tensor`` here: no other copy.
"""

import numpy as np

from wrn_deploy.errors import UserError


def unit_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (0-255) as float32 in [0, 1]: the same division torchvision's ``ToTensor`` makes."""
    return pixels.astype(np.float32) / np.float32(255)


def to_pixels(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] as uint8 0-255, rounded: exactly the bytes of 8-bit pixels that
    ``unit_float`` divided."""
    return np.clip(np.rint(images * np.float32(255)), 0, 255).astype(np.uint8)


def transform(card):
    """A callable: PIL RGB image -> float32 tensor 3 x S x S in [0, 1] (S = ``card.input_size``),
    following the card's preprocess. Images of the wrong size with no resize raise UserError."""
    return pil_transform(card.input_size, card.preprocess)


def pil_transform(size: int, pre):
    """``transform`` for an input of ``size`` pixels a side and a ``card.Preprocess``."""
    from torchvision import transforms as T

    to_tensor = T.ToTensor()
    if pre.resize is None:
        def as_they_are(im):
            if im.size != (size, size):
                raise UserError(f"the image is {im.size[0]}x{im.size[1]}; the model takes {size}x{size} images as "
                                "they are (its card's preprocess has no resize)")
            return to_tensor(im)
        return as_they_are
    mode = T.InterpolationMode(pre.interpolation)
    return T.Compose([T.Resize(pre.resize, interpolation=mode), T.CenterCrop(size), to_tensor])


def image_tensor(path, card):
    """One image file as the model's float32 input (3 x S x S, RGB in [0, 1]): decoded as every
    wrn-deploy step decodes it (Pillow, RGB, the decompression-bomb limit an error), then ``transform``."""
    from wrn_deploy.data.sources import decode_rgb_pil

    try:
        return transform(card)(decode_rgb_pil(path))
    except UserError as e:
        msg = e.format_message()
        raise UserError(f"{path}: {msg}" if msg.startswith("the image is") else msg) from None
