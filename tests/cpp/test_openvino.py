"""The C++ program's OpenVINO backend (``--backend openvino``, in builds that found OpenVINO's C++
runtime) against the Python side, as test_parity.py checks the ONNX Runtime backend: the FP32, FP16
and INT8 exports on the 1,000 CIFAR-10 test PNGs, the 224-pixel model on resized and cropped
images, batch sizes, and bad models as one line. Skipped where the build has no OpenVINO backend.

The reference is OpenVINO's Python API on the same file with the same settings as the C++ backend
(f32 precision hint, latency hint, one stream, one request, the same threads), so the logits are
expected to be equal. For FP32 and FP16 the logits also agree with ONNX Runtime's within the same
tolerance. INT8 is not compared with ONNX Runtime this tightly: the two runtimes carry out the Q/DQ
arithmetic with different kernels (on WRN-10-1 with random weights, whose logits differ by little
between classes, they differed by up to 0.05 and agreed on 88% of top-1 classes; see docs/cpp.md).
"""

import numpy as np
import pytest

from tests.cpp.conftest import ERROR_PREFIX, classify, python_images
from tests.cpp.test_bad_input import CASES, check_one_line, run_case
from tests.cpp.test_parity import LOGIT_TOL, dumped, python_logits
from wrn_deploy.card import read_card

THREADS = 2
BATCH = 64


@pytest.fixture(scope="module")
def ov_exe(cpp_exe):
    configured = (cpp_exe.parent / "ok").read_text()
    backends = next((line for line in configured.splitlines() if "wrn-classify backends:" in line), "")
    if "openvino" not in backends:
        pytest.skip("this build of wrn-classify has no OpenVINO backend (OpenVINO's C++ runtime was not found; "
                    "pip install openvino gives its CMake config)")
    return cpp_exe


def openvino_logits(model, images, batch: int = BATCH) -> np.ndarray:
    """The Python API of the same OpenVINO, configured as the C++ backend configures it."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(model), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
        "PERFORMANCE_HINT_NUM_REQUESTS": 1, "INFERENCE_NUM_THREADS": THREADS})
    request = compiled.create_infer_request()
    x = images.numpy()
    return np.concatenate([request.infer({0: x[i:i + batch]})[compiled.output(0)].copy()
                           for i in range(0, len(x), batch)])


def run_openvino(exe, model, paths, *args):
    return classify(exe, model, paths, "--backend", "openvino", "--threads", THREADS, "--json", *args)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_cifar_pngs_match_python(cpp_models, ov_exe, cifar_pngs, tmp_path, precision):
    paths, ref = cifar_pngs
    model = cpp_models[precision]
    run = run_openvino(ov_exe, model, paths, "--batch", BATCH, "--topk", "3", "--dump-input", tmp_path / "x.bin")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert np.array_equal(dumped(tmp_path / "x.bin", ref.shape), ref.numpy())  # the backend changes no pixel

    got, want = run.logits(), openvino_logits(model, ref)
    assert got.shape == want.shape == (1000, 10)
    diff = np.abs(got - want).max()
    assert diff <= LOGIT_TOL, f"{precision}: max |logit difference| from Python's OpenVINO {diff}"
    assert np.array_equal(got.argmax(1), want.argmax(1))
    res = run.result
    assert res["backend"] == "openvino-cpu" and res["precision"] == str(read_card(model).precision)
    for i, im in enumerate(res["images"]):
        assert [t["index"] for t in im["top"]] == list(np.argsort(-want[i], kind="stable")[:3])
    if precision != "int8":
        ort = python_logits(model, ref)
        diff = np.abs(got - ort).max()
        assert diff <= LOGIT_TOL, f"{precision}: max |logit difference| from ONNX Runtime {diff}"
        assert np.array_equal(got.argmax(1), ort.argmax(1))


@pytest.mark.slow  # a 224-pixel model through three runtimes: ~10 s on the 2-core machine
def test_large_images_on_the_224_pixel_model(cpp_model_224, ov_exe, large_images):
    paths, ref = python_images(large_images, 224)
    run = run_openvino(ov_exe, cpp_model_224, paths, "--batch", "7")
    assert run.returncode == 0, run.stderr
    for want in (openvino_logits(cpp_model_224, ref, batch=7), python_logits(cpp_model_224, ref)):
        assert np.abs(run.logits() - want).max() <= LOGIT_TOL
        assert np.array_equal(run.logits().argmax(1), want.argmax(1))


def test_batch_size_changes_no_logit(cpp_models, ov_exe, cifar_pngs):
    """Each batch size is a new input shape for the compiled model (the batch axis stays dynamic)."""
    paths = cifar_pngs[0][:23]
    one = run_openvino(ov_exe, cpp_models["fp32"], paths, "--batch", "1")
    many = run_openvino(ov_exe, cpp_models["fp32"], paths, "--batch", "10")
    assert one.returncode == many.returncode == 0, one.stderr + many.stderr
    np.testing.assert_allclose(one.logits(), many.logits(), rtol=0, atol=LOGIT_TOL)


def test_bf16_hint_is_taken_or_named_as_lowered(cpp_models, ov_exe, cifar_pngs):
    """--precision-hint bf16: where the CPU computes in bf16 the backend says so in its name; where
    it cannot (AVX2-only CPUs such as this project's test machine), OpenVINO stays in f32 and the
    logits are the f32 ones."""
    paths = cifar_pngs[0][:50]
    f32 = run_openvino(ov_exe, cpp_models["fp32"], paths)
    bf16 = run_openvino(ov_exe, cpp_models["fp32"], paths, "--precision-hint", "bf16")
    assert f32.returncode == bf16.returncode == 0, bf16.stderr
    if bf16.result["backend"] == "openvino-cpu":
        np.testing.assert_allclose(bf16.logits(), f32.logits(), rtol=0, atol=LOGIT_TOL)
    else:
        assert bf16.result["backend"] == "openvino-cpu-bf16"
        assert np.isfinite(bf16.logits()).all() and bf16.logits().shape == f32.logits().shape


# The model cases of test_bad_input.py, through OpenVINO (its own words where ONNX Runtime's differ).
MODEL_CASES = {
    "missing model": None, "model is a folder": None, "onnx without card": None, "card not json": None,
    "card absurd input_size": None, "card input_size disagrees with graph": None, "card says plan": None,
    "class name with a newline": None, "card nested 200,000 deep": None,
    "model is not onnx": ["OpenVINO cannot load", "junk.onnx"],
}


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_bad_models_are_one_line(cpp_models, ov_exe, cifar_dir, tmp_path, name):
    run, words = run_case(ov_exe, name, tmp_path, cpp_models, cifar_dir, backend=["--backend", "openvino"])
    check_one_line(run, MODEL_CASES[name] or words)
    assert "ONNX Runtime" not in run.stderr


def test_an_operator_openvino_lacks_is_named(cpp_models, ov_exe, cifar_dir, tmp_path):
    import onnx

    model = onnx.load(str(cpp_models["fp32"]))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.op_type = "NoSuchConv"
    bad = tmp_path / "bogus.onnx"
    onnx.save(model, str(bad))
    run = run_openvino(ov_exe, bad, [min((cifar_dir / "test").glob("*/*.png"))])
    check_one_line(run, ["OpenVINO cannot load", "No conversion rule found for operations: NoSuchConv"])
    assert run.stderr.startswith(ERROR_PREFIX)


assert set(MODEL_CASES) <= set(CASES)
