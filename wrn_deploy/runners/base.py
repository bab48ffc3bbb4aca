"""The Runner contract (after Polygraphy's): activate / infer / deactivate, and a context manager."""

import numpy as np
import torch


class Runner:
    name = "runner"

    def __init__(self):
        self.is_active = False

    def activate(self) -> None:
        if not self.is_active:
            self._activate()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def infer(self, images: torch.Tensor) -> np.ndarray:
        if not self.is_active:
            raise RuntimeError(f"{self.name}: call activate() (or use 'with') before infer()")
        return self._infer(images)

    def infer_all(self, images: torch.Tensor, batch: int = 64, progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        steps = range(0, len(images), batch)
        out = [self.infer(images[i:i + batch]) for i in tqdm(steps, desc=self.name, disable=not progress, leave=False)]
        return np.concatenate(out)

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.deactivate()

    # subclasses implement these
    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, images: torch.Tensor) -> np.ndarray:
        raise NotImplementedError
