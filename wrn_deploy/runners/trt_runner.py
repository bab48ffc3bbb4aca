"""TensorRT: a ``.plan`` run with PyTorch CUDA tensors as its buffers (no pycuda), dynamic batch.

Before TensorRT sees a byte, the plan's sha256 must match its manifest (a plan without one, or
with one that does not match, is refused unless ``allow_unverified``), the Ed25519 signature must
verify under the trust policy (``plan_trust.py``), and the manifest's TensorRT version and GPU must
match this machine. The bytes that are hashed and verified are the bytes that are deserialized.

This module and ``engine/`` are the only places that import ``tensorrt`` (``pyproject.toml``'s
import-linter contract holds them to it); ``import_tensorrt`` lives here, the lowest of the two,
and the engine builder uses it too.
"""

from pathlib import Path

import numpy as np
import torch

from wrn_deploy import plan_trust
from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner, TensorMeta


def import_tensorrt(lean_ok: bool = False):
    """The ``tensorrt`` module, or a one-line error naming what to install. With ``lean_ok`` (a
    version-compatible plan, which the lean runtime runs), NVIDIA's lean runtime module
    (``tensorrt_lean``, from the tensorrt-lean wheels on PyPI) serves where the full one is absent."""
    try:
        import tensorrt as trt
    except ImportError as e:
        lean = _import_lean()
        if lean is not None and lean_ok:
            return lean
        hint = ("; the lean runtime here runs only plans built with --version-compatible" if lean is not None
                else "; a --version-compatible plan also runs on the lean runtime (pip install tensorrt-lean)")
        raise UserError(f"TensorRT is not installed or cannot load ({e}); install the 'trt' extra "
                        "(pip install 'wrn-deploy[trt]' from NVIDIA's index) on a machine with an NVIDIA GPU"
                        + hint) from None
    return trt


def _import_lean():
    """``tensorrt_lean`` (the tensorrt-lean meta-package's name) or its bindings module, or None."""
    import importlib

    for name in ("tensorrt_lean", "tensorrt_lean_bindings"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def require_cuda():
    """``torch``, once it is known to see a CUDA GPU (TensorRT needs one)."""
    if not torch.cuda.is_available():
        raise UserError("TensorRT needs an NVIDIA GPU with a working CUDA driver; PyTorch sees none here")
    return torch


def _torch_dtype(trt, dt):
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.INT8: torch.int8, trt.DataType.INT32: torch.int32,
             trt.DataType.INT64: torch.int64, trt.DataType.BOOL: torch.bool, trt.DataType.BF16: torch.bfloat16}
    return table[dt]


class TrtRunner(Runner):
    name = "tensorrt"

    def __init__(self, plan, verify_key=None, allow_host_code: bool = False, warn=print, device: str = "cuda",
                 allow_unverified: bool = False):
        super().__init__()
        self.plan, self.verify_key, self.allow_host_code, self.warn = plan, verify_key, allow_host_code, warn
        self.allow_unverified = allow_unverified
        self.trust = self._data = None
        self._checked = False
        self.device = device  # "cuda"; the CPU test suite drives the logic through a stand-in TensorRT
        self.engine = self.context = self.manifest = self.manifest_bytes = self.key = None

    def check(self) -> None:
        """Manifest, trust policy, TensorRT and GPU present: everything that needs no GPU work (once:
        ``activate`` after an explicit ``check`` neither reads the manifest again nor warns twice)."""
        if self._checked:
            return
        self.trust = plan_trust.Trust(self.plan, self.verify_key, self.allow_unverified, self.warn).preflight()
        self.manifest, self.key = self.trust.manifest, self.trust.key
        if self.allow_host_code and self.key is None:
            raise UserError("--allow-host-code runs code from inside the plan: only for a plan whose signature "
                            f"verifies; pass --verify-key or set {plan_trust.KEY_ENV}")
        # The one read, verified now (before any image loads) and kept: exactly these bytes are deserialized.
        self._data = Path(self.plan).read_bytes()
        self.trust.verify(self._data)
        import_tensorrt(self._version_compatible())
        require_cuda()
        self._checked = True

    def _version_compatible(self) -> bool:
        """A plan built with --version-compatible (its manifest says so): the lean runtime runs it."""
        return bool(self.manifest and (self.manifest.get("build") or {}).get("version_compatible"))

    def _activate(self) -> None:
        data, self._data = self._data, None  # verified by check(); an unverified plan is never deserialized
        if data is None:  # activated again after a deactivate: read and verify once more
            data = Path(self.plan).read_bytes()
            self.trust.verify(data)
        trt = import_tensorrt(self._version_compatible())
        if self.manifest is not None:
            plan_trust.check_compatible(self.manifest, trt.__version__, torch.cuda.get_device_capability(),
                                        torch.cuda.get_device_name())
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        # Engine host code runs inside this process: only when asked, and (check()) only for a verified plan.
        self.runtime.engine_host_code_allowed = self.allow_host_code and self.key is not None
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            why = ("it was loaded unverified (no manifest): it may not be a TensorRT plan at all"
                   if self.manifest is None else "built for another TensorRT version or GPU?")
            raise UserError(f"TensorRT could not deserialize {self.plan} (see its log above): {why}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        self.trt = trt

    def _deactivate(self) -> None:
        self.context = self.engine = None
        if self.device == "cuda":
            torch.cuda.empty_cache()

    def _meta(self, names) -> list:
        return [TensorMeta(n, str(_torch_dtype(self.trt, self.engine.get_tensor_dtype(n))).removeprefix("torch."),
                           tuple(int(d) for d in self.engine.get_tensor_shape(n))) for n in names]

    def _inputs(self) -> list:
        return self._meta(self.input_names)

    def _outputs(self) -> list:
        return self._meta(self.output_names)

    def _batch_range(self) -> tuple:
        lo, _opt, hi = self.engine.get_tensor_profile_shape(self.input_names[0], 0)
        return int(lo[0]), int(hi[0])

    def _infer(self, images: np.ndarray) -> np.ndarray:
        name = self.input_names[0]
        x = torch.from_numpy(images).to(self.device, _torch_dtype(self.trt, self.engine.get_tensor_dtype(name))).contiguous()
        self.context.set_input_shape(name, tuple(x.shape))
        self.context.set_tensor_address(name, x.data_ptr())
        outs = {}
        for o in self.output_names:
            shape = tuple(self.context.get_tensor_shape(o))
            dtype = _torch_dtype(self.trt, self.engine.get_tensor_dtype(o))
            outs[o] = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(o, outs[o].data_ptr())
        handle = torch.cuda.current_stream().cuda_stream if self.device == "cuda" else 0
        if not self.context.execute_async_v3(handle):
            raise UserError("TensorRT execute_async_v3 failed")
        if self.device == "cuda":
            torch.cuda.current_stream().synchronize()
        return outs[self.output_names[0]].float().cpu().numpy()
