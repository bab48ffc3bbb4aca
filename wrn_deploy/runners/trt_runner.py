"""TensorRT: a ``.plan`` run with PyTorch CUDA tensors as its buffers (no pycuda), dynamic batch.

Before TensorRT sees a byte, the plan's sha256 must match its manifest, the optional Ed25519
signature must verify, and the manifest's TensorRT version and GPU must match this machine.
"""

import numpy as np
import torch

from wrn_deploy.engine import manifest as M
from wrn_deploy.engine.trt_api import import_tensorrt, require_cuda
from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner


def _torch_dtype(trt, dt):
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.INT8: torch.int8, trt.DataType.INT32: torch.int32,
             trt.DataType.INT64: torch.int64, trt.DataType.BOOL: torch.bool, trt.DataType.BF16: torch.bfloat16}
    return table[dt]


class TrtRunner(Runner):
    name = "tensorrt"

    def __init__(self, plan, verify_key=None, allow_host_code: bool = False, warn=print, device: str = "cuda"):
        super().__init__()
        self.plan, self.verify_key, self.allow_host_code, self.warn = plan, verify_key, allow_host_code, warn
        self.device = device  # "cuda"; the CPU test suite drives the logic through a stand-in TensorRT
        self.engine = self.context = None

    def preflight(self) -> dict | None:
        """Integrity, signature and compatibility checks that need no GPU work."""
        from pathlib import Path

        if not Path(self.plan).is_file():
            raise UserError(f"engine {self.plan} does not exist")
        manifest = M.read_manifest(self.plan)
        if self.verify_key:
            M.verify_signature(self.plan, self.verify_key)
        if manifest is None:
            self.warn(f"warning: {self.plan} has no manifest ({M.manifest_path(self.plan).name}); its integrity "
                      "and compatibility cannot be checked before TensorRT loads it")
            return None
        M.check_integrity(self.plan, manifest)
        return manifest

    def _activate(self) -> None:
        manifest = self.preflight()
        trt = import_tensorrt()
        require_cuda()
        if manifest is not None:
            M.check_compatible(manifest, trt.__version__, torch.cuda.get_device_capability(),
                               torch.cuda.get_device_name())
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        # Engine host code runs inside this process: allowed only when the user asks.
        self.runtime.engine_host_code_allowed = self.allow_host_code
        with open(self.plan, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise UserError(f"TensorRT could not deserialize {self.plan} (see its log above): built for "
                            "another TensorRT version or GPU?")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.trt = trt

    def _deactivate(self) -> None:
        self.context = self.engine = None
        if self.device == "cuda":
            torch.cuda.empty_cache()

    def batch_range(self) -> tuple:
        lo, _opt, hi = self.engine.get_tensor_profile_shape(self.inputs[0], 0)
        return lo[0], hi[0]

    def _infer(self, images: torch.Tensor) -> np.ndarray:
        lo, hi = self.batch_range()
        if len(images) > hi:  # split batches larger than the profile allows
            return np.concatenate([self._infer(images[i:i + hi]) for i in range(0, len(images), hi)])
        if len(images) < lo:
            raise UserError(f"batch {len(images)} is below the engine profile's minimum {lo}")
        name = self.inputs[0]
        x = images.to(self.device, _torch_dtype(self.trt, self.engine.get_tensor_dtype(name))).contiguous()
        self.context.set_input_shape(name, tuple(x.shape))
        self.context.set_tensor_address(name, x.data_ptr())
        outs = {}
        for o in self.outputs:
            shape = tuple(self.context.get_tensor_shape(o))
            outs[o] = torch.empty(shape, dtype=_torch_dtype(self.trt, self.engine.get_tensor_dtype(o)), device=self.device)
            self.context.set_tensor_address(o, outs[o].data_ptr())
        handle = torch.cuda.current_stream().cuda_stream if self.device == "cuda" else 0
        if not self.context.execute_async_v3(handle):
            raise UserError("TensorRT execute_async_v3 failed")
        if self.device == "cuda":
            torch.cuda.current_stream().synchronize()
        return outs[self.outputs[0]].float().cpu().numpy()
