"""The C++ program (cpp/), built once per test session in temporary folders: a release build and an
AddressSanitizer + UndefinedBehaviorSanitizer build, plus the models both are checked with (a WRN
with randomised BatchNorm statistics, exported FP32 and FP16 and quantized to INT8 by the
project's own commands, and a 224-pixel export for the resize-and-crop rule).

The ONNX Runtime headers (Debian's libonnxruntime-dev) and nlohmann/json come from
cpp/tools/fetch_deps.py (pinned .deb files from a Debian mirror, cached in ~/.cache/wrn-deploy);
the library is the onnxruntime wheel's. Where the openvino wheel is installed, fetch_deps.py also
gives its CMake folder and the release build has the OpenVINO backend (test_openvino.py). Without cmake, a C++ compiler, make, libpng/libjpeg
headers or a reachable Debian mirror the tests skip and say which one is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

CPP = ROOT / "cpp"
BUILD_CACHE = Path.home() / ".cache" / "wrn-deploy" / "cpp-builds"
ERROR_PREFIX = "wrn-classify: error: "


def _nice() -> list:
    return ["nice", "-n", "5"] if shutil.which("nice") else []


@pytest.fixture(scope="session")
def cpp_deps() -> list:
    """CMake arguments for ONNX Runtime and nlohmann/json, or a skip saying what is missing."""
    for tool in ("cmake", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; the C++ program cannot be built here")
    if not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no C++ compiler (c++/g++) is installed; the C++ program cannot be built here")
    proc = subprocess.run([sys.executable, str(CPP / "tools" / "fetch_deps.py"), "--json"], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"C++ dependencies unavailable: {proc.stderr.strip()}")
    return [f"-D{k}={v}" for k, v in json.loads(proc.stdout).items()]


def _build_key(deps: list, options: list, targets: list) -> str:
    """What a build depends on: every file under cpp/, the dependencies' CMake arguments (their paths
    carry their versions and checksums), the options and targets, and the compiler and CMake."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in CPP.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(f.relative_to(CPP)).encode() + b"\0" + f.read_bytes() + b"\0")
    for tool in (["cmake", "--version"], [shutil.which("c++") or "g++", "--version"]):
        h.update(subprocess.run(tool, capture_output=True, text=True).stdout.encode())
    h.update(json.dumps([deps, options, targets]).encode())
    return h.hexdigest()[:16]


class _Build:
    """One CMake configure + build of wrn-classify, run in a background thread so that both builds
    overlap with making the models; ``result()`` waits and skips or fails in the test's thread.

    Builds are kept in the user cache (beside the fetched dependencies) under a key of everything
    they depend on (``_build_key``): a test session with unchanged C++ reuses them, any change to
    cpp/, the dependencies, the compiler or the options builds anew. A build is complete when its
    ``ok`` file holds the configure output; anything else in the folder is thrown away first."""

    def __init__(self, name: str, deps: list, options: list, targets: list):
        key = _build_key(deps, options, targets)
        self.folder = BUILD_CACHE / f"{name}-{key}"
        self.deps, self.options, self.targets = deps, options, targets
        self.outcome = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import fcntl

        BUILD_CACHE.mkdir(parents=True, exist_ok=True)
        with open(BUILD_CACHE / f"{self.folder.name}.lock", "a") as lock:  # two sessions at once: one builds
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = self.folder / "ok"
            if done.is_file():
                self.outcome = ("ok", done.read_text())
                return
            shutil.rmtree(self.folder, ignore_errors=True)
            self.outcome = self._build()
            if self.outcome[0] == "ok":
                done.write_text(self.outcome[1])

    def _build(self) -> tuple:
        try:
            cfg = subprocess.run(["cmake", "-S", str(CPP), "-B", str(self.folder), *self.deps, *self.options],
                                 capture_output=True, text=True, timeout=600)
            if cfg.returncode != 0:
                return ("configure", cfg.stdout + cfg.stderr)
            proc = subprocess.run([*_nice(), "cmake", "--build", str(self.folder), "--target", *self.targets,
                                   "-j", "2"], capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                return ("build", proc.stdout[-6000:] + proc.stderr[-6000:])
            return ("ok", cfg.stdout)
        except (OSError, subprocess.SubprocessError) as e:
            return ("build", f"{type(e).__name__}: {e}")

    def result(self) -> Path:
        self.thread.join()
        kind, out = self.outcome
        if kind == "configure":
            for lib in ("PNG", "JPEG"):
                if f"Could NOT find {lib}" in out:
                    pytest.skip(f"lib{lib.lower()} development headers are not installed (e.g. apt-get install "
                                "libpng-dev libjpeg-dev); the C++ program cannot be built here")
            raise AssertionError(f"cmake configure failed:\n{out}")
        assert kind == "ok", f"C++ build failed:\n{out}"
        # Without TensorRT, CMake says in one line that its backend is skipped.
        assert "TensorRT backend: skipped" in out or "backends: onnxruntime;tensorrt" in out, out
        exe = self.folder / "wrn-classify"
        assert exe.is_file()
        return exe


@pytest.fixture(scope="session")
def cpp_builds(cpp_deps) -> dict:
    """Both builds, started together at the first test that needs either (reused from the cache
    when nothing they depend on changed)."""
    return {"release": _Build("release", cpp_deps, ["-DCMAKE_BUILD_TYPE=Release"], ["wrn-classify", "embed-example"]),
            # Without OpenVINO: its TBB opens libtbbbind with RTLD_DEEPBIND, which AddressSanitizer refuses
            # (google/sanitizers#611), so its backend cannot run under the sanitizers anyway.
            "sanitize": _Build("sanitize", cpp_deps, ["-DCMAKE_BUILD_TYPE=Debug", "-DWRN_SANITIZE=ON",
                                                      "-DWRN_WITH_OPENVINO=OFF"], ["wrn-classify"])}


@pytest.fixture(scope="session")
def cpp_exe(cpp_builds) -> Path:
    return cpp_builds["release"].result()


@pytest.fixture(scope="session")
def cpp_asan_exe(cpp_builds) -> Path:
    return cpp_builds["sanitize"].result()


SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=99",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=98",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict:
        return json.loads(self.stdout)

    def logits(self):
        import numpy as np

        return np.array([im["logits"] for im in self.result["images"]], dtype=np.float32)


def classify(exe: Path, model, images, *args, env=None) -> Run:
    """Run wrn-classify; the image list goes through a response-free argv (no shell)."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([str(exe), "--model", str(model), *map(str, args), *map(str, images)],
                          capture_output=True, text=True, timeout=600, env=full_env)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_sanitizer_clean(run: Run) -> None:
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
        assert marker not in run.stderr, run.stderr[-4000:]
    assert run.returncode not in (98, 99), run.stderr[-4000:]


# -- models -------------------------------------------------------------------------------------------
def _wrn_deploy(*args) -> None:
    """Run a wrn-deploy command in this process (as the user's command line would, without paying
    for a new interpreter and torch import each time)."""
    from click.testing import CliRunner

    from wrn_deploy.cli import cli

    res = CliRunner().invoke(cli, [str(a) for a in args])
    where = f"wrn-deploy {' '.join(map(str, args))}"
    assert res.exit_code == 0, f"{where}: exit {res.exit_code}\n{res.output}\n{res.exception!r}"

def _checkpoint(path: Path, size: int) -> Path:
    """A WRN-10-1 with randomised BatchNorm statistics (tests/export/conftest.py), for ``size`` pixels."""
    import torch

    from tests.export.conftest import randomize_batchnorm
    from wrn_deploy.arch import create_model
    from wrn_deploy.card import Step, new_card, versions
    from wrn_deploy.checkpoint import save_checkpoint
    from wrn_deploy.data.synthetic import CLASSES

    torch.manual_seed(12)
    model = randomize_batchnorm(create_model("wrn-10-1", len(CLASSES), dropout=0.0), seed=12)
    card = new_card("wrn-10-1", CLASSES, size, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), Step("test", {}, versions()),
                    dataset={"name": "synthetic"})
    save_checkpoint(path, model.state_dict(), card)
    return path


@pytest.fixture(scope="session")
def cpp_models(tmp_path_factory, cpp_builds) -> dict:
    """FP32, FP16 and INT8 ONNX files of one 32-pixel model, made by export and quantize (while the
    C++ builds run)."""
    root = tmp_path_factory.mktemp("cpp-models")
    ckpt = _checkpoint(root / "wrn-10-1.safetensors", 32)
    models = {"fp32": root / "m.onnx", "fp16": root / "m.fp16.onnx", "int8": root / "m.int8.onnx"}
    _wrn_deploy("export", ckpt, "-o", models["fp32"], "--no-verify")
    _wrn_deploy("export", ckpt, "-o", models["fp16"], "--fp16", "--no-verify")
    _wrn_deploy("quantize", models["fp32"], "-o", models["int8"], "--calib-size", "128", "--calib-dir", root / "calib",
                "--no-progress")
    return models


@pytest.fixture(scope="session")
def cpp_model_224(tmp_path_factory, cpp_builds) -> Path:
    """A 224-pixel FP32 export (ImageNet-sized input: resize the short side to 256, crop 224)."""
    root = tmp_path_factory.mktemp("cpp-model-224")
    ckpt = _checkpoint(root / "wrn-10-1-224.safetensors", 224)
    out = root / "m224.onnx"
    _wrn_deploy("export", ckpt, "-o", out, "--no-verify")
    return out


def with_preprocess(model: Path, out: Path, resize: int | None, interpolation: str = "bilinear") -> Path:
    """A copy of ``model`` whose card's preprocess is (resize, interpolation)."""
    import dataclasses

    from wrn_deploy.card import Preprocess, read_card, write_into_onnx

    out.write_bytes(Path(model).read_bytes())
    write_into_onnx(out, dataclasses.replace(read_card(model), preprocess=Preprocess(resize, interpolation)))
    return out


@pytest.fixture(scope="session")
def cpp_models_resized(cpp_models, tmp_path_factory) -> dict:
    """The 32-pixel FP32 and FP16 exports with a card saying resize 36 (= int(32 * 256 / 224), the
    rule wrn_deploy.data applies to large images today): a 32-pixel card without a preprocess field
    takes images as they are."""
    root = tmp_path_factory.mktemp("cpp-models-resized")
    return {k: with_preprocess(cpp_models[k], root / f"{k}.onnx", 36) for k in ("fp32", "fp16")}


# Sizes (width, height) the upscaled CIFAR images get: square, both orientations, odd sizes, the
# exact 224 and 256 cases, strong elongation, and shrinking mostly in height (Pillow 13 then
# resamples vertically first).
LARGE_SIZES = [(65, 65), (97, 80), (300, 256), (256, 300), (224, 224), (400, 70), (257, 1000), (999, 333),
               (256, 256), (241, 240), (1200, 300), (80, 96)]


@pytest.fixture(scope="session")
def large_images(cifar_dir, tmp_path_factory) -> Path:
    """An ImageFolder test/ tree of real CIFAR-10 test images upscaled with Pillow to LARGE_SIZES,
    each saved as PNG and as JPEG."""
    from PIL import Image

    root = tmp_path_factory.mktemp("cpp-large")
    sources = sorted((cifar_dir / "test").glob("*/*.png"))
    k = 0
    for w, h in LARGE_SIZES:
        for ext in ("png", "jpg"):
            src = sources[(k * 41) % len(sources)]
            folder = root / "test" / src.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            im = Image.open(src).convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
            im.save(folder / f"{k:02d}.{ext}", **({"quality": 90} if ext == "jpg" else {}))
            k += 1
    return root


def python_images(root: Path, size: int, train: bool = False, preprocess=None):
    """An ImageFolder split the way the Python pipeline gives it (wrn_deploy.data's load_folder and
    Selection.images(), with the card's ``preprocess``; None: the default rule for ``size``):
    (file paths, float tensor N x 3 x size x size)."""
    import torch

    from wrn_deploy.data.load import Selection
    from wrn_deploy.data.sources import load_folder

    split, classes, *_ = load_folder(root, train, progress=False)
    sel = Selection("cifar10", "train" if train else "test", split, size, {}, classes, preprocess)
    return [root / i for i in sel.ids], torch.from_numpy(sel.images())


@pytest.fixture(scope="session")
def cifar_pngs(cifar_dir):
    """The 1,000 CIFAR-10 test PNGs (shared or generated) as the Python pipeline gives them."""
    return python_images(cifar_dir, 32)


@pytest.fixture(scope="session")
def cifar_jpegs(real_cifar_dir):
    """The 2,000 extracted shared CIFAR-10 training JPEGs as the Python pipeline gives them (real ones:
    another encoder's files are the point of decoding them like Pillow)."""
    return python_images(real_cifar_dir, 32, train=True)
