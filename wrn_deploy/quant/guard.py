"""The accuracy guard: INT8 against FP32 top-1 on held-out training images, both in ONNX Runtime
CPU through its runner (the openvino target's INT8 in OpenVINO, where it is installed: the runtime
that will run it). When INT8 loses more than allowed, layers are ranked by how much quantizing
each alone moves the logits, and the worst are left in float one at a time until the bound holds.

Every figure (top-1, agreement, the interval of the drop) comes from ``parity.stats.paired``, the
same statistics eval reports; the result is built once and never changed afterwards.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from wrn_deploy.data.preprocess import unit_float
from wrn_deploy.limits import BATCH
from wrn_deploy.parity.stats import Paired, paired, top1
from wrn_deploy.runners.ort_runner import OrtRunner


@dataclass(frozen=True)
class GuardStep:
    excluded: tuple     # nodes kept float so far, in the order they were excluded
    int8_top1: float    # %, with those nodes float
    drop: float         # FP32 minus INT8 top-1, points


@dataclass(frozen=True)
class GuardResult:
    stats: Paired                  # the final INT8 model (candidate) against FP32 (reference)
    steps: tuple = ()              # GuardStep per exclusion, in order
    ranking: tuple = ()            # (node, mean squared logit error alone in INT8), most sensitive first

    @property
    def fp32_top1(self) -> float:
        return self.stats.ref_top1

    @property
    def int8_top1(self) -> float:
        return self.stats.cand_top1

    @property
    def agreement(self) -> float:
        return self.stats.agreement

    @property
    def drop(self) -> float:
        return -self.stats.diff + 0.0  # + 0.0 turns -0.0 into 0.0

    @property
    def drop_ci95(self) -> tuple:
        lo, hi = self.stats.diff_ci95
        return -hi + 0.0, -lo + 0.0

    @property
    def excluded(self) -> tuple:
        return self.steps[-1].excluded if self.steps else ()


@dataclass(frozen=True)
class HeldOut:
    """The images the guard scores on, and the FP32 model's logits on them (computed once)."""

    images: np.ndarray        # uint8 N x 3 x H x W (a quarter of the float size)
    labels: np.ndarray
    fp32_logits: np.ndarray


def runtime_for(target: str) -> str:
    """What scores a target's INT8 model: OpenVINO for the openvino target where it is installed."""
    from wrn_deploy.runners.openvino_runner import available

    return "openvino" if target == "openvino" and available() else "onnxruntime"


def logits(path, images, runtime: str = "onnxruntime") -> np.ndarray:
    """Logits of the ONNX model at ``path`` on uint8 images, converted to [0, 1] a batch at a time."""
    from wrn_deploy.runners.openvino_runner import OpenVinoRunner

    with (OpenVinoRunner(path) if runtime == "openvino" else OrtRunner(path)) as runner:
        return np.concatenate([runner.infer(unit_float(images[i:i + BATCH]))
                               for i in range(0, len(images), BATCH)])


# FP32 logits by (model sha256, images sha256): the pipeline quantizes one model for two targets on
# the same held-out images, and the FP32 side of the guard is the same both times.
_FP32 = OrderedDict()


def held_out(fp32_path, selection, model_sha256: str) -> HeldOut:
    """The held-out images of ``selection`` as uint8, with the FP32 model's logits on them."""
    import hashlib

    from wrn_deploy.quant.decoded import uint8_images

    images = uint8_images(selection)  # decoded once a process (the pipeline's next target reuses them)
    key = (model_sha256, hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest())
    if key not in _FP32:
        _FP32[key] = logits(fp32_path, images)
        while len(_FP32) > 4:
            _FP32.popitem(last=False)
    return HeldOut(images, np.asarray(selection.labels), _FP32[key])


def check(held: HeldOut, int8_path, max_drop: float | None, quantize: Callable, nodes: list,
          progress: bool = False, runtime: str = "onnxruntime") -> GuardResult:
    """Score ``int8_path``; above ``max_drop`` (None: never), rank ``nodes`` and rebuild with the worst
    kept float until the drop fits. ``quantize(exclude=[...], only=[...])`` writes a model and returns
    its path."""
    stats = paired(held.fp32_logits, logits(int8_path, held.images, runtime), held.labels)
    if max_drop is None or -stats.diff <= max_drop:
        return GuardResult(stats)
    ranking = rank_layers(held, quantize, nodes, progress, runtime)
    steps, excluded, got = [], [], None
    for node, _ in ranking:
        excluded.append(node)
        got = logits(quantize(exclude=list(excluded)), held.images, runtime)
        acc = top1(got, held.labels)
        steps.append(GuardStep(tuple(excluded), acc, stats.ref_top1 - acc))  # FP32 top-1 from the first pairing
        if steps[-1].drop <= max_drop:
            break
    if got is None:  # nothing to keep float
        return GuardResult(stats)
    return GuardResult(paired(held.fp32_logits, got, held.labels), tuple(steps), tuple(ranking))


def rank_layers(held: HeldOut, quantize: Callable, nodes: list, progress: bool = False,
                runtime: str = "onnxruntime") -> list:
    """[(node, mean squared logit error when only that node is INT8)] on 64 images, most sensitive first."""
    from tqdm import tqdm

    images, ref = held.images[:64], held.fp32_logits[:64]
    scores = []
    for node in tqdm(nodes, desc="ranking layers", disable=not progress, leave=False):
        err = float(((logits(quantize(only=[node]), images, runtime) - ref) ** 2).mean())
        scores.append((node, err))
    return sorted(scores, key=lambda s: -s[1])
