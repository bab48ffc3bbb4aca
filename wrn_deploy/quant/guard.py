"""The accuracy guard: INT8 against FP32 top-1 on held-out training images, both in ONNX Runtime
CPU through its runner. When INT8 loses more than allowed, layers are ranked by how much quantizing
each alone moves the logits, and the worst are left in float one at a time until the bound holds."""

from dataclasses import dataclass, field

import numpy as np
import torch

from wrn_deploy.limits import BATCH
from wrn_deploy.parity.compare import run
from wrn_deploy.runners.ort_runner import OrtRunner


@dataclass
class GuardResult:
    fp32_top1: float
    int8_top1: float
    agreement: float
    steps: list = field(default_factory=list)   # [{"excluded": [...], "int8_top1": x, "drop": d}]
    ranking: list = field(default_factory=list)  # [(node, logit mse)] most sensitive first
    drop_ci95: tuple = (0.0, 0.0)                # bootstrap 95% interval of the drop, points

    @property
    def drop(self) -> float:
        return self.fp32_top1 - self.int8_top1


def logits(path, images: torch.Tensor) -> np.ndarray:
    return run(OrtRunner(path), images, BATCH).logits


def drop_interval(fp32_logits: np.ndarray, int8_logits: np.ndarray, labels) -> tuple:
    """95% bootstrap interval of the top-1 drop (FP32 minus INT8), in points, pairing the images."""
    from wrn_deploy.parity.stats import bootstrap_diff_ci

    labels = np.asarray(labels)
    lo, hi = bootstrap_diff_ci(fp32_logits.argmax(1) == labels, int8_logits.argmax(1) == labels)
    return -hi + 0.0, -lo + 0.0


def top1(pred: np.ndarray, labels) -> float:
    """Top-1 accuracy (%) of ``pred`` logits against labels (or another model's predictions)."""
    return float((pred.argmax(1) == np.asarray(labels)).mean() * 100)


def rank_layers(fp32_logits: np.ndarray, images: torch.Tensor, quantize_only, nodes: list, progress=None) -> list:
    """[(node, mean squared logit error when only that node is INT8)], most sensitive first."""
    scores = []
    for node in nodes:
        path = quantize_only(node)
        err = float(((logits(path, images) - fp32_logits) ** 2).mean())
        scores.append((node, err))
        if progress:
            progress.update(1)
    return sorted(scores, key=lambda s: -s[1])
