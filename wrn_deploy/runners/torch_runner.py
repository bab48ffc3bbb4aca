"""PyTorch: a checkpoint, a model, or a callable that makes one, on the CPU or a CUDA GPU, in fp32,
fp16 or bf16. A checkpoint is wrapped with its card's normalisation; a model object must already
take images in [0, 1] (a ``Normalized`` network, as export prepares)."""

import copy
from pathlib import Path

import numpy as np
import torch

from wrn_deploy.errors import UserError
from wrn_deploy.runners.base import Runner, TensorMeta, resolve

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_NP = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchRunner(Runner):
    def __init__(self, source, device: str = "cpu", precision: str = "fp32"):
        super().__init__()
        if precision not in DTYPES:
            raise UserError(f"precision {precision!r}: choose one of {', '.join(DTYPES)}")
        self.source, self.device, self.precision = source, device, precision
        self.name = f"torch-{device}-{precision}"
        self.net = self.card = None

    def check(self) -> None:
        if isinstance(self.source, (str, Path)) and not Path(self.source).is_file():
            raise UserError(f"checkpoint {self.source} does not exist")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")

    def _activate(self) -> None:
        source = resolve(self.source)
        if isinstance(source, (str, Path)):
            from wrn_deploy.arch.normalize import Normalized
            from wrn_deploy.checkpoint import model_from_checkpoint

            model, self.card = model_from_checkpoint(source)
            net = Normalized(model, self.card.mean, self.card.std)
        else:
            net = copy.deepcopy(source)  # the caller's model keeps its device and dtype
        self.net = net.eval().to(self.device, DTYPES[self.precision])

    def _deactivate(self) -> None:
        self.net = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    @torch.inference_mode()
    def _infer(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(self.device, DTYPES[self.precision])
        return self.net(x).float().cpu().numpy()

    def _inputs(self) -> list:
        size = self.card.input_size if self.card else -1
        return [TensorMeta("images", _NP[self.precision], (-1, 3, size, size))]

    def _outputs(self) -> list:
        classes = self.card.num_classes if self.card else -1
        return [TensorMeta("logits", "float32", (-1, classes))]
