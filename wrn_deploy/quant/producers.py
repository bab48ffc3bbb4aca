"""Who writes the Q/DQ graph: wrn-deploy itself (ONNX Runtime's calibrator and quantizer, placed by
``placement.py``) or NVIDIA ModelOpt's ONNX PTQ. Both take the same pre-processed FP32 ONNX and the
same calibration images; ``onnx_to_int8`` keeps the manifest, the guard and the card for both.

ModelOpt (``nvidia-modelopt``) pins onnx and onnxruntime-gpu versions that conflict with this
package's, so it usually lives in a separate virtual environment. It is always run as a subprocess,
``python -m modelopt.onnx.quantization``: with this interpreter when ModelOpt is importable here, or
with the interpreter named by ``WRN_DEPLOY_MODELOPT_PYTHON``. One code path either way, and nothing
of ModelOpt is imported into this process.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from wrn_deploy.errors import UserError

MODELOPT_ENV = "WRN_DEPLOY_MODELOPT_PYTHON"
# Not an extra of this package: nvidia-modelopt[onnx] pins onnx~=1.21 and onnxruntime-gpu~=1.24, and
# onnxruntime-gpu installed beside this package's onnxruntime overwrites the same module.
MODELOPT_HINT = ("--quantizer modelopt needs nvidia-modelopt, in its own virtual environment (its onnx and "
                 "onnxruntime-gpu pins conflict with this package's): python -m venv mo && mo/bin/pip install "
                 f"'nvidia-modelopt[onnx]', then {MODELOPT_ENV}=mo/bin/python")


class WrnDeployProducer:
    """ONNX Runtime's calibrator (ranges cached in the calibration folder) and quantizer."""

    name = "wrn-deploy"
    uses_cached_ranges = True

    def __init__(self, spec, tmp: Path):
        self.spec = spec

    def versions(self) -> dict:
        return {}

    def calibrate(self, pre: Path, chunks, ranges: Path, progress: bool = False) -> None:
        from wrn_deploy.quant import qdq

        qdq.calibrate(pre, chunks, self.spec, ranges, progress)

    def quantize(self, pre: Path, out: Path, ranges: Path, exclude=None, only=None) -> None:
        from wrn_deploy.quant import qdq

        qdq.quantize(pre, out, self.spec, ranges, exclude=exclude, only=only)

    def nodes(self, model) -> dict:
        from wrn_deploy.quant import qdq

        return qdq.quantizable_nodes(model, self.spec)


class ModelOptProducer:
    """``python -m modelopt.onnx.quantization --quantize_mode int8`` with CPU calibration on the
    calibration images (a .npy file); ModelOpt places the pairs and computes the scales itself, so
    no ranges are cached: each call calibrates again."""

    name = "modelopt"
    uses_cached_ranges = False

    def __init__(self, spec, tmp: Path):
        self.spec, self.tmp = spec, Path(tmp)
        self.python = modelopt_python()
        self.calib = self.tmp / "modelopt-calib.npy"
        self._version = None

    def versions(self) -> dict:
        if self._version is None:
            self._version = _run([self.python, "-c", "import importlib.metadata as m; "
                                  "print(m.version('nvidia-modelopt'))"], "reading ModelOpt's version").strip()
        return {"nvidia-modelopt": self._version}

    def calibrate(self, pre: Path, chunks, ranges: Path, progress: bool = False) -> None:
        import numpy as np

        np.save(self.calib, np.concatenate(list(chunks(64))).astype(np.float32))

    def quantize(self, pre: Path, out: Path, ranges: Path, exclude=None, only=None) -> None:
        method = {"entropy": "entropy", "minmax": "max"}[self.spec.method]  # QuantSpec.check refuses the rest
        cmd = [self.python, "-m", "modelopt.onnx.quantization", "--onnx_path", str(pre), "--quantize_mode", "int8",
               "--calibration_method", method, "--calibration_data_path", str(self.calib),
               "--calibration_eps", "cpu", "--high_precision_dtype", self.spec.rest,
               "--output_path", str(out), "--log_level", "WARNING"]
        # ModelOpt reads node names as regular expressions matched at the start: anchor them.
        if only:
            cmd += ["--nodes_to_quantize", *(f"{re.escape(n)}$" for n in only)]
        if exclude:
            cmd += ["--nodes_to_exclude", *(f"{re.escape(n)}$" for n in exclude)]
        _run(cmd, "ModelOpt's ONNX quantization", cwd=self.tmp)
        if not Path(out).exists():
            raise UserError(f"ModelOpt's ONNX quantization wrote no model at {out}")

    def nodes(self, model) -> dict:
        # The same layers the guard ranks for wrn-deploy's fusion placement.
        from wrn_deploy.quant import qdq

        return qdq.quantizable_nodes(model, self.spec)


def modelopt_python() -> str:
    """The interpreter that runs ModelOpt, or a UserError naming the package when there is none."""
    env = os.environ.get(MODELOPT_ENV)
    if env:
        path = shutil.which(env) or env
        if not Path(path).is_file():
            raise UserError(f"{MODELOPT_ENV}={env} is not a python interpreter")
        probe = subprocess.run([path, "-c", "import modelopt.onnx.quantization"], capture_output=True, text=True)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"{MODELOPT_ENV}={env} cannot import modelopt.onnx.quantization ({last}); {MODELOPT_HINT}")
        return path
    if importlib.util.find_spec("modelopt") is None:
        raise UserError(MODELOPT_HINT)
    return sys.executable


def _run(cmd: list, what: str, cwd=None) -> str:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        raise UserError(f"{what} failed (exit {proc.returncode}): {lines[-1] if lines else 'no output'}")
    return proc.stdout


def for_spec(spec, tmp: Path):
    return {"wrn-deploy": WrnDeployProducer, "modelopt": ModelOptProducer}[spec.quantizer](spec, tmp)
