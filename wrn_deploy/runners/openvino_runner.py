"""OpenVINO on the CPU, reading the ONNX file itself (``Core.read_model``; no IR conversion step).

Every setting that decides speed or numbers is set, never left to the CPU plugin's defaults, which
change with the machine: on a CPU with AMX the plugin computes an FP32 model in BF16 unless told
otherwise, so an "FP32" row measured there would not be FP32. Set here:

- ``INFERENCE_PRECISION_HINT``: ``f32`` or ``bf16`` (the unquantized layers of an INT8 model too).
  Where the CPU has no BF16 instructions the plugin computes in f32 whatever the hint; the runner
  reads back what the compiled model uses (``ran_precision``) so a report can say so.
- ``INFERENCE_NUM_THREADS``: ``threads``, default every CPU this process may run on.
- ``NUM_STREAMS`` 1 and ``PERFORMANCE_HINT`` LATENCY: the runner serves one request at a time, so
  several streams would only split the threads between requests that never come.
"""

import os
from pathlib import Path

import numpy as np

from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner, TensorMeta, as_input, resolve

PRECISIONS = ("f32", "bf16")
_TYPES = {"f32": "float32", "f16": "float16", "u8": "uint8", "f64": "float64"}


def require_openvino():
    try:
        import openvino
    except ImportError as e:
        raise UserError(f"OpenVINO is not installed ({e}); install the 'openvino' extra "
                        "(pip install 'wrn-deploy[openvino]')") from None
    return openvino


def available() -> bool:
    """Whether the openvino package can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class OpenVinoRunner(Runner):
    """``source``: an ONNX path, or a callable giving one. ``precision``: the inference precision
    hint, ``f32`` or ``bf16``. ``threads``: inference threads (None: every CPU this process has)."""

    def __init__(self, source, precision: str = "f32", threads: int | None = None):
        super().__init__()
        if precision not in PRECISIONS:
            raise UserError(f"OpenVINO precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.source, self.precision, self.threads = source, precision, threads
        self.name = f"openvino-cpu-{precision}"
        self.compiled = self.request = None
        self.ran_precision: str | None = None   # what the compiled model computes in, read back

    def config(self) -> dict:
        return {"INFERENCE_PRECISION_HINT": self.precision, "INFERENCE_NUM_THREADS": self.threads or default_threads(),
                "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}

    def check(self) -> None:
        require_openvino()
        if isinstance(self.source, (str, Path)) and not Path(self.source).is_file():
            raise UserError(f"ONNX file {self.source} does not exist")

    def _activate(self) -> None:
        ov = require_openvino()
        core = ov.Core()
        path = resolve(self.source)
        try:
            model = core.read_model(str(path))
            self.compiled = core.compile_model(model, "CPU", self.config())
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError and its own types
            raise UserError(f"OpenVINO cannot load {path}: {_first_line(e)}") from None
        self.ran_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.request = self.compiled.create_infer_request()
        self.dtype = np.dtype(_TYPES.get(self.compiled.input(0).get_element_type().get_type_name(), "float32"))

    def _deactivate(self) -> None:
        self.request = self.compiled = None

    def _infer(self, images: np.ndarray) -> np.ndarray:
        try:
            self.request.infer({0: as_input(images, self.dtype)})
        except Exception as e:  # noqa: BLE001
            raise UserError(f"OpenVINO could not run {self.source} on images of shape {tuple(images.shape)}: "
                            f"{_first_line(e)}") from None
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)

    @staticmethod
    def _meta(ports) -> list:
        out = []
        for p in ports:
            shape = tuple(d.get_length() if d.is_static else -1 for d in p.get_partial_shape())
            kind = p.get_element_type().get_type_name()
            out.append(TensorMeta(p.get_any_name(), _TYPES.get(kind, kind), shape))
        return out

    def _inputs(self) -> list:
        return self._meta(self.compiled.inputs)

    def _outputs(self) -> list:
        return self._meta(self.compiled.outputs)

    def _batch_range(self) -> tuple:
        first = self.compiled.input(0).get_partial_shape()[0]
        return (first.get_length(),) * 2 if first.is_static else (1, None)


def _first_line(e: Exception) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip() and not s.strip().startswith("Check ")]
    return (lines or [type(e).__name__])[0][:300]
