"""NVIDIA's Polygraphy, run the way its users run it (its command line, the 'dev' extra installs it),
on the files `export` and `quantize` write: they pass its lint, its constant folding finds nothing
left to fold, its ONNX Runtime backend gives the logits wrn-deploy's runner gives, and its
comparison of FP16 and INT8 against FP32 passes at their tolerances and fails at a tight one."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.conftest import run_cli

pytest.importorskip("polygraphy", reason="Polygraphy is not installed (the 'dev' extra: pip install polygraphy)")

# name -> the kit's file, and the ONNX Runtime graph optimization Polygraphy must use to run it as
# wrn-deploy does: the TensorRT form (Q/DQ with an FP16 remainder) runs as written on a CPU, because
# ONNX Runtime's CPU optimizer rewrites that form into something else (docs/tensorrt.md).
FORMS = {"fp32": ("m.onnx", None), "fp16": ("h.onnx", None), "int8-tensorrt": ("q.onnx", "ORT_DISABLE_ALL"),
         "int8-cpu": ("c.onnx", None)}
BATCH, IMAGES = 16, 64


@pytest.fixture(scope="module")
def files(kit, tmp_path_factory) -> Path:
    """The kit's FP32, FP16 and TensorRT-form INT8 files, its CPU-form INT8, 64 synthetic test
    images and a Polygraphy data loader script that feeds them in batches of 16."""
    from wrn_deploy.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("polygraphy")
    for name in ("m.onnx", "h.onnx", "q.onnx"):
        shutil.copy(kit / name, root / name)
    shutil.copytree(kit / "calib", root / "calib")
    run_cli("quantize", root / "m.onnx", "-o", root / "c.onnx", "--target", "cpu", "--calib-dir", root / "calib",
            "--calib-size", "128", "--no-progress")
    images, _ = make_synthetic(IMAGES, 7)
    np.save(root / "images.npy", images.float().div(255).numpy())
    (root / "loader.py").write_text(
        "import numpy as np\n\n\n"
        "def load_data():\n"
        f"    images = np.load({str(root / 'images.npy')!r})\n"
        f"    for i in range(0, len(images), {BATCH}):\n"
        f"        yield {{'images': images[i:i + {BATCH}]}}\n")
    return root


def polygraphy(*args) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("polygraphy")
    # Its own TMPDIR, removed after: `surgeon sanitize --fold-constants` leaves a copy of the model there.
    with tempfile.TemporaryDirectory(prefix="wrn-deploy-test-polygraphy-") as tmp:
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                              env=dict(os.environ, TMPDIR=tmp))


def _run(files, form, *extra) -> subprocess.CompletedProcess:
    """`polygraphy run FILE --onnxrt` on the test images, saving its outputs to FORM.json."""
    name, level = FORMS[form]
    opt = ["--graph-optimization-level", level] if level else []
    return polygraphy("run", files / name, "--onnxrt", *opt, "--data-loader-script", files / "loader.py",
                      "--save-outputs", files / f"{form}.json", *extra)


def _logits(path) -> np.ndarray:
    from polygraphy.comparator import RunResults

    (_, iterations), = RunResults.load(str(path)).items()
    return np.concatenate([it["logits"] for it in iterations])


@pytest.mark.parametrize("form", FORMS)
def test_lint_passes_and_nothing_is_left_to_fold(files, form, tmp_path):
    path = files / FORMS[form][0]
    lint = polygraphy("check", "lint", path)
    assert lint.returncode == 0 and "PASSED" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    folded = tmp_path / "folded.onnx"
    # --no-onnxruntime-shape-inference: ONNX Runtime's shape inference imports torch (4 s) to answer what
    # onnx.shape_inference answers as well here.
    san = polygraphy("surgeon", "sanitize", "--fold-constants", "--no-onnxruntime-shape-inference", path, "-o", folded)
    assert san.returncode == 0, san.stdout + san.stderr
    assert len(onnx.load(folded).graph.node) == len(onnx.load(path).graph.node)


def test_polygraphy_runs_every_form_as_wrn_deploy_does(files):
    """Each file run by Polygraphy's ONNX Runtime backend gives exactly the logits of wrn-deploy's
    runner; FP16 within 0.02 of FP32 on every logit, INT8 within 0.25 on average."""
    from wrn_deploy.runners.ort_runner import OrtRunner

    proc = _run(files, "fp32")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tolerances = {"fp16": ["--atol", "0.02", "--rtol", "0"],
                  "int8-tensorrt": ["--atol", "0.25", "--rtol", "0", "--check-error-stat", "mean"],
                  "int8-cpu": ["--atol", "0.25", "--rtol", "0", "--check-error-stat", "mean"]}
    for form, tolerance in tolerances.items():
        proc = _run(files, form, "--load-outputs", files / "fp32.json", *tolerance)
        assert proc.returncode == 0, form + "\n" + proc.stdout + proc.stderr
    images = np.load(files / "images.npy")
    for form, (name, _) in FORMS.items():
        with OrtRunner(files / name) as runner:
            ours = np.concatenate([runner.infer(images[i:i + BATCH]) for i in range(0, IMAGES, BATCH)])
        assert np.array_equal(_logits(files / f"{form}.json"), ours), form


def test_polygraphy_comparison_fails_beyond_tolerance(files):
    """The same comparison is not vacuous: INT8 against FP32 at a tolerance it cannot meet fails."""
    if not (files / "fp32.json").is_file():
        assert _run(files, "fp32").returncode == 0
    proc = _run(files, "int8-cpu", "--load-outputs", files / "fp32.json", "--atol", "1e-4", "--rtol", "0",
                "--check-error-stat", "mean")
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
