"""PyTorch: a checkpoint (or a model) on the CPU or a CUDA GPU, in fp32, fp16 or bf16."""

import numpy as np
import torch

from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchRunner(Runner):
    def __init__(self, checkpoint, device: str = "cpu", precision: str = "fp32"):
        super().__init__()
        if precision not in DTYPES:
            raise UserError(f"precision {precision!r}: choose one of {', '.join(DTYPES)}")
        self.checkpoint, self.device, self.precision = checkpoint, device, precision
        self.name = f"torch-{device}-{precision}"
        self.net = None

    def _activate(self) -> None:
        from wrn_deploy.arch.normalize import Normalized
        from wrn_deploy.checkpoint import model_from_checkpoint

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
        model, card = model_from_checkpoint(self.checkpoint)
        self.card = card
        self.net = Normalized(model, card["mean"], card["std"]).eval().to(self.device, DTYPES[self.precision])

    def _deactivate(self) -> None:
        self.net = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    @torch.inference_mode()
    def _infer(self, images: torch.Tensor) -> np.ndarray:
        x = images.to(self.device, DTYPES[self.precision])
        return self.net(x).float().cpu().numpy()
