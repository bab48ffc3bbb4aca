"""ONNX Runtime: CPU, CUDA, or its TensorRT execution provider where onnxruntime-gpu has them."""

import numpy as np
import torch

from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


class OrtRunner(Runner):
    def __init__(self, path, provider: str = "cpu", threads: int | None = None):
        super().__init__()
        if provider not in PROVIDERS:
            raise UserError(f"provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
        self.path, self.provider, self.threads = path, provider, threads
        self.name = f"onnxruntime-{provider}"
        self.session = None

    def _activate(self) -> None:
        import onnxruntime as ort

        wanted = PROVIDERS[self.provider]
        if wanted not in ort.get_available_providers():
            raise UserError(f"ONNX Runtime here has no {wanted}; install the 'gpu' extra (onnxruntime-gpu) "
                            "on a machine with an NVIDIA GPU")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        providers = [wanted] + (["CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [])
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises several types for unreadable models
            raise UserError(f"ONNX Runtime cannot load {self.path}: {str(e).splitlines()[0]}") from None
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def _deactivate(self) -> None:
        self.session = None

    def _infer(self, images: torch.Tensor) -> np.ndarray:
        n, fixed = len(images), self.fixed_batch
        if fixed and n != fixed:  # a fixed-batch model: run in its batch size, zero-pad the last one
            chunks = [images[i:i + fixed] for i in range(0, n, fixed)]
            chunks[-1] = torch.cat([chunks[-1], chunks[-1].new_zeros(fixed - len(chunks[-1]), *images.shape[1:])])
            return np.concatenate([self._infer(c) for c in chunks])[:n]
        out = self.session.run(None, {self.input: images.numpy().astype(self.dtype)})[0]
        return out.astype(np.float32)
