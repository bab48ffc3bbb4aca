"""The C++ program against the Python side on CIFAR-10 images (real where ../shared exists; its JPEGs
only then): the input tensor bit for bit
(decoding, resize and crop, [0, 1] scaling, normalisation), the logits within a stated tolerance
and the top-1 class of every image, for the FP32, FP16 and INT8 exports."""

import dataclasses

import numpy as np
import pytest
import torch

from tests.cpp.conftest import classify, python_images
from wrn_deploy.card import read_card, write_into_onnx
from wrn_deploy.runners.ort_runner import OrtRunner

# Both sides run the same ONNX Runtime library with the same session options on bit-identical
# inputs, so the logits are expected to be equal; the bound allows for a different thread split.
LOGIT_TOL = 1e-5


def python_logits(model, images: torch.Tensor) -> np.ndarray:
    with OrtRunner(model) as runner:
        return runner.infer_all(images, batch=64)


def dumped(path, shape) -> np.ndarray:
    return np.fromfile(path, dtype=np.float32).reshape(shape)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_cifar_cifar_pngs_match_python(cpp_models, cpp_exe, cifar_pngs, tmp_path, precision):
    paths, ref = cifar_pngs
    assert len(paths) == 1000 and all(p.suffix == ".png" for p in paths)
    model = cpp_models[precision]
    run = classify(cpp_exe, model, paths, "--json", "--topk", "3", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert np.array_equal(dumped(tmp_path / "x.bin", ref.shape), ref.numpy())  # bit for bit

    got, want = run.logits(), python_logits(model, ref)
    assert got.shape == want.shape == (1000, 10)
    diff = np.abs(got - want).max()
    assert diff <= LOGIT_TOL, f"{precision}: max |logit difference| {diff}"
    assert np.array_equal(got.argmax(1), want.argmax(1))
    res, card = run.result, read_card(model)
    assert res["backend"] == "onnxruntime-cpu" and res["precision"] == str(card.precision)
    for i, im in enumerate(res["images"]):
        assert im["path"] == str(paths[i])
        assert im["top"][0]["index"] == int(want[i].argmax())
        assert [t["index"] for t in im["top"]] == list(np.argsort(-want[i], kind="stable")[:3])
        assert [t["class"] for t in im["top"]] == [card.classes[t["index"]] for t in im["top"]]
        p_top = 1.0 / np.exp(want[i].astype(np.float64) - want[i].max()).sum()
        assert abs(p_top - im["top"][0]["probability"]) < 1e-6


def test_cifar_train_jpegs_decode_like_pillow(cpp_models, cpp_exe, cifar_jpegs, tmp_path):
    """The shared training images are JPEG: libjpeg's decoding equals Pillow's on all of them."""
    paths, ref = cifar_jpegs
    keep = list(range(0, len(paths), 4))  # 500 of the 2,000 extracted JPEGs, every class
    paths, ref = [paths[i] for i in keep], ref[keep]
    assert all(p.suffix == ".jpg" for p in paths)
    run = classify(cpp_exe, cpp_models["fp32"], paths, "--json", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    assert np.array_equal(dumped(tmp_path / "x.bin", ref.shape), ref.numpy())
    want = python_logits(cpp_models["fp32"], ref)
    assert np.abs(run.logits() - want).max() <= LOGIT_TOL
    assert np.array_equal(run.logits().argmax(1), want.argmax(1))


@pytest.mark.parametrize("size", [224, 32])
def test_large_images_resize_and_crop_like_python(cpp_models_resized, cpp_exe, cpp_model_224, large_images, tmp_path,
                                                  size):
    """Images over 64 pixels a side: torchvision's Resize(int(size * 256 / 224)) on a PIL image
    (Pillow's antialiased bilinear filter) and CenterCrop(size), through wrn_deploy.data; the
    224-pixel card has no preprocess field (the legacy rule), the 32-pixel one says resize 36."""
    model = cpp_model_224 if size == 224 else cpp_models_resized["fp32"]
    paths, ref = python_images(large_images, size, preprocess=read_card(model).preprocess)
    assert {p.suffix for p in paths} == {".png", ".jpg"} and len(paths) >= 20
    run = classify(cpp_exe, model, paths, "--json", "--batch", "7", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    got_x = dumped(tmp_path / "x.bin", ref.shape)
    differ = [str(paths[i]) for i in range(len(paths)) if not np.array_equal(got_x[i], ref[i].numpy())]
    assert not differ, f"input differs from Python for {differ}"
    want = python_logits(model, ref)
    assert np.abs(run.logits() - want).max() <= LOGIT_TOL
    assert np.array_equal(run.logits().argmax(1), want.argmax(1))


def test_normalises_only_when_the_graph_does_not(cpp_models, cpp_exe, cifar_pngs, tmp_path):
    """A card saying normalized_in_graph=false makes the program apply (x - mean) / std itself,
    in float32 as wrn_deploy.arch.normalize does; true (every export) leaves x in [0, 1]."""
    paths, ref = cifar_pngs
    paths, ref = paths[:50], ref[:50]
    card = read_card(cpp_models["fp32"])
    assert card.input.normalized_in_graph
    model = tmp_path / "bare.onnx"
    model.write_bytes(cpp_models["fp32"].read_bytes())
    write_into_onnx(model, dataclasses.replace(card, input=dataclasses.replace(card.input, normalized_in_graph=False)))
    run = classify(cpp_exe, model, paths, "--json", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    assert run.result["normalized_in_graph"] is False
    mean = torch.tensor(card.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(card.std, dtype=torch.float32).view(1, 3, 1, 1)
    want = ((ref - mean) / std).numpy()
    assert np.array_equal(dumped(tmp_path / "x.bin", ref.shape), want)
    assert not np.array_equal(want, ref.numpy())


def test_batches_and_text_output(cpp_models, cpp_exe, cifar_pngs):
    """Batch size does not change a logit, and the text output names the top-k classes."""
    paths = cifar_pngs[0][:23]
    one = classify(cpp_exe, cpp_models["fp32"], paths, "--json", "--batch", "1")
    many = classify(cpp_exe, cpp_models["fp32"], paths, "--json", "--batch", "10")
    assert one.returncode == many.returncode == 0
    np.testing.assert_allclose(one.logits(), many.logits(), rtol=0, atol=LOGIT_TOL)
    text = classify(cpp_exe, cpp_models["fp32"], paths, "--topk", "2")
    assert text.returncode == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert len(lines) == len(paths)
    classes = read_card(cpp_models["fp32"]).classes
    for line, path, logits in zip(lines, paths, one.logits()):
        fields = line.split("\t")
        assert fields[0] == str(path) and len(fields) == 3
        assert fields[1].startswith(classes[int(logits.argmax())] + " ") and fields[1].endswith("%")


def test_embedding_example(cpp_models, cpp_exe, cifar_pngs):
    """cpp/examples/embed.cpp (the README's example: open once, classify many) builds and agrees."""
    import subprocess

    paths, ref = cifar_pngs
    paths, ref = paths[:6], ref[:6]
    proc = subprocess.run([str(cpp_exe.parent / "embed-example"), str(cpp_models["int8"]), *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    classes = read_card(cpp_models["int8"]).classes
    want = python_logits(cpp_models["int8"], ref).argmax(1)
    lines = proc.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in paths]
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == [classes[i] for i in want]


def image_variants(cifar_dir, tmp_path) -> list:
    """32x32 files in many PNG colour types and JPEG variants, made from real CIFAR-10 test images."""
    import struct
    import zlib

    from PIL import Image

    from tests.cpp.test_bad_input import _png_chunk

    srcs = sorted((cifar_dir / "test").glob("*/*.png"))[::97][:4]
    paths = []
    for k, src in enumerate(srcs):
        rgb = Image.open(src).convert("RGB")
        alpha = Image.linear_gradient("L").resize(rgb.size)
        variants = {
            "1.png": (rgb.convert("1"), {}), "l.png": (rgb.convert("L"), {}),
            # 16-bit grey: values below and above 255 (Pillow clips them to 255)
            "l16.png": (Image.fromarray((np.asarray(rgb.convert("L"), dtype=np.uint16) * (k + 1)).astype(np.uint16)),
                        {}),
            "la.png": (Image.merge("LA", (rgb.convert("L"), alpha)), {}),
            "p.png": (rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=200), {}),
            "p4.png": (rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), {"bits": 4}),
            "pt.png": (rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), {"transparency": 3}),
            "rgba.png": (Image.merge("RGBA", (*rgb.split(), alpha)), {}),
            "l.jpg": (rgb.convert("L"), {"quality": 85}),
            "prog.jpg": (rgb, {"quality": 80, "progressive": True}),
            "444.jpg": (rgb, {"quality": 95, "subsampling": 0}),
            "422.jpg": (rgb, {"quality": 70, "subsampling": 1}),
        }
        for name, (im, opts) in variants.items():
            path = tmp_path / f"{k}-{name}"
            im.save(path, **opts)
            paths.append(path)
    # 16-bit RGB, grey + alpha and RGBA (Pillow reads them, but does not write them): written here.
    rng = np.random.default_rng(5)
    for color, channels in ((2, 3), (4, 2), (6, 4)):
        a = rng.integers(0, 65536, (32, 32, channels), dtype=np.uint16)
        rows = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(32))
        path = tmp_path / f"c{color}-16bit.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 16, color, 0, 0, 0))
                         + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b""))
        paths.append(path)
    return paths


def test_png_and_jpeg_variants_decode_like_pillow(cpp_models, cpp_exe, cifar_dir, tmp_path):
    """PNG colour types (1-bit, grey, 16-bit grey, grey+alpha, palette with and without
    transparency, 4-bit palette, RGBA, and 16-bit RGB, grey+alpha and RGBA) and JPEG variants
    (grey, progressive, 4:4:4, 4:2:2): the C++ decoding equals wrn_deploy.data.sources.decode_rgb."""
    from wrn_deploy.data.sources import decode_rgb

    paths = image_variants(cifar_dir, tmp_path)
    run = classify(cpp_exe, cpp_models["fp32"], paths, "--json", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    got = dumped(tmp_path / "x.bin", (len(paths), 3, 32, 32))
    for i, path in enumerate(paths):
        want = torch.from_numpy(decode_rgb(path).copy()).permute(2, 0, 1).float().div(255).numpy()
        assert np.array_equal(got[i], want), path.name
