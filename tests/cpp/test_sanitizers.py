"""The AddressSanitizer + UndefinedBehaviorSanitizer build (leak checking on) on the same real
images, models and bad-input corpus: no report, the same tensors and logits as the release build."""

import numpy as np
import pytest

from tests.cpp.conftest import SANITIZER_ENV, assert_sanitizer_clean, classify, python_images
from tests.cpp.test_bad_input import CASES, Corpus, check_one_line, run_case
from tests.cpp.test_parity import LOGIT_TOL, dumped, image_variants
from wrn_deploy.card import read_card


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_sanitized_build_on_cifar_cifar_pngs(cpp_models, cpp_asan_exe, cpp_exe, cifar_pngs, tmp_path, precision):
    paths, ref = cifar_pngs
    model = cpp_models[precision]
    run = classify(cpp_asan_exe, model, paths, "--json", "--batch", "64", "--dump-input", tmp_path / "x.bin",
                   env=SANITIZER_ENV)
    assert_sanitizer_clean(run)
    assert run.returncode == 0, run.stderr[-3000:]
    assert np.array_equal(dumped(tmp_path / "x.bin", ref.shape), ref.numpy())
    release = classify(cpp_exe, model, paths, "--json", "--batch", "64")
    assert np.abs(run.logits() - release.logits()).max() <= LOGIT_TOL
    assert np.array_equal(run.logits().argmax(1), release.logits().argmax(1))


def test_sanitized_build_on_jpegs_and_large_images(cpp_models, cpp_models_resized, cpp_asan_exe, cpp_model_224,
                                                   cifar_jpegs, large_images, tmp_path):
    jpegs, ref = cifar_jpegs
    jpegs, ref = jpegs[::10], ref[::10]
    run = classify(cpp_asan_exe, cpp_models["int8"], jpegs, "--json", "--dump-input", tmp_path / "j.bin",
                   env=SANITIZER_ENV)
    assert_sanitizer_clean(run)
    assert run.returncode == 0
    assert np.array_equal(dumped(tmp_path / "j.bin", ref.shape), ref.numpy())
    for size, model in ((224, cpp_model_224), (32, cpp_models_resized["fp16"])):
        paths, ref = python_images(large_images, size, preprocess=read_card(model).preprocess)
        run = classify(cpp_asan_exe, model, paths, "--json", "--batch", "5", "--dump-input", tmp_path / f"l{size}.bin",
                       env=SANITIZER_ENV)
        assert_sanitizer_clean(run)
        assert run.returncode == 0
        assert np.array_equal(dumped(tmp_path / f"l{size}.bin", ref.shape), ref.numpy())


def test_sanitized_build_on_image_variants(cpp_models, cpp_asan_exe, cpp_exe, cifar_dir, tmp_path):
    paths = image_variants(cifar_dir, tmp_path)
    run = classify(cpp_asan_exe, cpp_models["fp32"], paths, "--json", "--dump-input", tmp_path / "a.bin",
                   env=SANITIZER_ENV)
    assert_sanitizer_clean(run)
    assert run.returncode == 0, run.stderr[-3000:]
    release = classify(cpp_exe, cpp_models["fp32"], paths, "--json", "--dump-input", tmp_path / "r.bin")
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "r.bin").read_bytes()
    assert np.abs(run.logits() - release.logits()).max() <= LOGIT_TOL


def test_sanitized_build_on_bad_input(cpp_models, cpp_asan_exe, cifar_dir, tmp_path):
    for i, name in enumerate(CASES):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        run, words = run_case(cpp_asan_exe, name, folder, cpp_models, cifar_dir, env=SANITIZER_ENV)
        assert_sanitizer_clean(run)
        check_one_line(run, words)
    c = Corpus(tmp_path, cpp_models, cifar_dir)
    run = classify(cpp_asan_exe, c.plan(bytes(range(256)) * 300), [c.good], env=SANITIZER_ENV)
    assert_sanitizer_clean(run)
    check_one_line(run, ["no TensorRT backend"])  # the manifest check passed; no TensorRT in this build
