"""The Runner contract (after Polygraphy's): activate / infer / deactivate, and a context manager.

Every runner takes float RGB images in [0, 1] (N,3,H,W, a NumPy array; a CPU tensor is taken too)
and returns float32 logits as a NumPy array; says what its input and output are (``inputs()``, ``outputs()``: name, dtype, shape
with -1 for a dynamic dimension) and which batch sizes it accepts (``batch_range()``); and times each
inference. Batches outside the range are split or zero-padded here, once for every runner.
"""

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorMeta:
    name: str
    dtype: str      # a NumPy dtype name: float32, float16, ...
    shape: tuple    # -1 where the dimension is dynamic


def as_input(images: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Images in [0, 1] as the model's input type: a raw-pixel (UINT8) input gets 0-255, rounded,
    which gives back exactly the bytes of an 8-bit image that was divided by 255."""
    if dtype == np.uint8:
        from wrn_deploy.data.preprocess import to_pixels

        return to_pixels(images)
    return np.asarray(images, dtype=dtype)


class Runner:
    name = "runner"

    def __init__(self):
        self.is_active = False
        self.inference_times: list = []   # seconds of each _infer call since activate()

    # -- lifecycle ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast (missing file, package or device) without loading the model. Optional."""

    def activate(self) -> None:
        if not self.is_active:
            self.check()
            self._activate()
            self.inference_times = []
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.deactivate()

    # -- inference ---------------------------------------------------------------------------------
    def infer(self, images: np.ndarray) -> np.ndarray:
        if not self.is_active:
            raise RuntimeError(f"{self.name}: call activate() (or use 'with') before infer()")
        images = np.asarray(images, dtype=np.float32)  # a CPU tensor's memory, shared
        lo, hi = self.batch_range()
        n = len(images)
        if hi is not None and n > hi:
            return np.concatenate([self.infer(images[i:i + hi]) for i in range(0, n, hi)])
        if n < lo:  # e.g. a fixed-batch model: zero-pad, then drop the padding's answers
            pad = np.zeros((lo - n, *images.shape[1:]), images.dtype)
            return self.infer(np.concatenate([images, pad]))[:n]
        t0 = time.perf_counter()
        out = self._infer(images)
        self.inference_times.append(time.perf_counter() - t0)
        return out

    def infer_all(self, images: np.ndarray, batch: int = 64, progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        steps = range(0, len(images), batch)
        with tqdm(steps, desc=self.name, disable=not progress, leave=False) as bar:  # cleared on errors too
            return np.concatenate([self.infer(images[i:i + batch]) for i in bar])

    def last_inference_time(self) -> float | None:
        return self.inference_times[-1] if self.inference_times else None

    # -- what the model takes and gives ------------------------------------------------------------
    def inputs(self) -> list:
        self._require_active()
        return self._inputs()

    def outputs(self) -> list:
        self._require_active()
        return self._outputs()

    def batch_range(self) -> tuple:
        """(smallest, largest) batch one call accepts; largest None when unbounded."""
        self._require_active()
        return self._batch_range()

    def _require_active(self) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name}: activate() before asking for its metadata")

    # subclasses implement these
    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, images: np.ndarray) -> np.ndarray:
        """``images``: float32 N x 3 x H x W in [0, 1]."""
        raise NotImplementedError

    def _inputs(self) -> list:
        raise NotImplementedError

    def _outputs(self) -> list:
        raise NotImplementedError

    def _batch_range(self) -> tuple:
        return 1, None


def resolve(source):
    """A runner's source may be a callable that makes the object (Polygraphy's loaders): call it."""
    import sys
    from pathlib import Path

    torch = sys.modules.get("torch")  # a module object exists only where torch is already imported
    module = torch is not None and isinstance(source, torch.nn.Module)
    return source() if callable(source) and not (module or isinstance(source, (str, Path))) else source
