"""The card's preprocess in the C++ program against torchvision itself: ``T.Compose([T.Resize(resize,
interpolation), T.CenterCrop(size), T.ToTensor()])`` on real images (CIFAR-10 test images upscaled
to photo sizes, with noise for fine detail, saved as JPEG and PNG), bilinear and bicubic.

Tolerance: none. Pillow resizes in 8-bit fixed point and rounds every resized pixel to 8 bits, and
the program reimplements that arithmetic, so the uint8 crops are equal and so are the float32
tensors (x / 255 on both sides). ``wrn_deploy.data.preprocess`` (what the Triton client example
calls) gives the same tensor."""

import numpy as np
import pytest

from tests.cpp.conftest import classify, with_preprocess
from tests.cpp.test_bad_input import check_one_line
from tests.cpp.test_parity import LOGIT_TOL, dumped, python_logits

SIZES = [(500, 375), (375, 500), (300, 300), (1000, 200)]


@pytest.fixture(scope="module")
def photos(cifar_dir, tmp_path_factory) -> list:
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    sources = sorted((cifar_dir / "test").glob("*/*.png"))
    rng = np.random.default_rng(5)
    paths = []
    for k, (w, h) in enumerate(SIZES):
        im = Image.open(sources[k * 97]).convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
        noisy = np.asarray(im).astype(np.int16) + rng.integers(-24, 25, (h, w, 3))
        im = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        im.save(root / f"{w}x{h}.jpg", quality=90)
        im.save(root / f"{w}x{h}.png")
        paths += [root / f"{w}x{h}.jpg", root / f"{w}x{h}.png"]
    return paths


def torchvision_tensor(paths, resize: int, interpolation: str, size: int) -> np.ndarray:
    from PIL import Image
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(resize, interpolation=T.InterpolationMode(interpolation)), T.CenterCrop(size),
                    T.ToTensor()])
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(tf(im.convert("RGB")).numpy())
    return np.stack(out)


@pytest.mark.parametrize("size,resize,interpolation", [(32, 36, "bilinear"), (32, 40, "bicubic"),
                                                      (224, 256, "bicubic")])
def test_card_preprocess_equals_torchvision(cpp_models, cpp_model_224, cpp_exe, photos, tmp_path, size, resize,
                                            interpolation):
    import torch

    from wrn_deploy.card import read_card
    from wrn_deploy.data.preprocess import image_tensor

    base = cpp_model_224 if size == 224 else cpp_models["fp32"]
    model = with_preprocess(base, tmp_path / "m.onnx", resize, interpolation)
    want = torchvision_tensor(photos, resize, interpolation, size)
    run = classify(cpp_exe, model, photos, "--json", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    got = dumped(tmp_path / "x.bin", want.shape)
    differ = [p.name for p, a, b in zip(photos, got, want) if not np.array_equal(a, b)]
    assert not differ, f"{interpolation} {resize}: C++ differs from torchvision for {differ}"
    card = read_card(model)
    assert np.array_equal(torch.stack([image_tensor(p, card) for p in photos]).numpy(), want)
    logits = python_logits(model, torch.from_numpy(want))
    assert np.abs(run.logits() - logits).max() <= LOGIT_TOL


def test_bicubic_and_bilinear_differ(cpp_models, cpp_exe, photos, tmp_path):
    """The interpolation is read from the card: the same resize with the other filter gives other pixels."""
    a = with_preprocess(cpp_models["fp32"], tmp_path / "a.onnx", 40, "bilinear")
    b = with_preprocess(cpp_models["fp32"], tmp_path / "b.onnx", 40, "bicubic")
    for m, out in ((a, "a.bin"), (b, "b.bin")):
        assert classify(cpp_exe, m, photos[:2], "--dump-input", tmp_path / out).returncode == 0
    assert not np.array_equal(np.fromfile(tmp_path / "a.bin", np.float32), np.fromfile(tmp_path / "b.bin", np.float32))


def test_no_resize_refuses_other_sizes_like_python(cpp_models, cpp_exe, photos):
    """A 32-pixel card without a preprocess field takes 32x32 images only, in C++ and in Python."""
    from wrn_deploy.card import read_card
    from wrn_deploy.data.preprocess import image_tensor
    from wrn_deploy.errors import UserError

    check_one_line(classify(cpp_exe, cpp_models["fp32"], photos[:1]), ["500x375", "no resize"])
    with pytest.raises(UserError, match="500x375.*no resize"):
        image_tensor(photos[0], read_card(cpp_models["fp32"]))
