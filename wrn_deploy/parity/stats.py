"""Paired statistics for two classifiers scored on the same images.

Both models see every image, so their errors are paired: the informative counts are the flips
(reference right and candidate wrong, and the reverse). McNemar's exact test asks whether the flips
are lopsided beyond chance; a paired bootstrap gives an interval for the top-1 difference.
"""

from dataclasses import asdict, dataclass
from math import comb

import numpy as np


@dataclass
class Paired:
    images: int
    ref_top1: float
    cand_top1: float
    ref_top5: float
    cand_top5: float
    agreement: float                 # % of images where the two top-1 predictions agree
    ref_only_right: int              # reference right, candidate wrong
    cand_only_right: int             # candidate right, reference wrong
    mcnemar_p: float
    diff: float                      # candidate top-1 minus reference top-1, points
    diff_ci95: tuple
    max_abs_logit_diff: float
    mean_abs_logit_diff: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["diff_ci95"] = list(self.diff_ci95)
        return d


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of b successes in b + c trials at p = 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_diff_ci(ref_ok: np.ndarray, cand_ok: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple:
    """95% percentile interval of (candidate - reference) top-1 in points, resampling images."""
    rng = np.random.default_rng(seed)
    n = len(ref_ok)
    delta = cand_ok.astype(np.int8) - ref_ok.astype(np.int8)
    means = np.empty(resamples)
    for start in range(0, resamples, 250):  # chunks keep memory small for large test sets
        idx = rng.integers(0, n, size=(min(250, resamples - start), n))
        means[start:start + len(idx)] = delta[idx].mean(1)
    lo, hi = np.percentile(means * 100, [2.5, 97.5])
    return float(lo), float(hi)


def top1(logits: np.ndarray, labels) -> float:
    """Top-1 accuracy (%) of ``logits`` against labels (or another model's predictions)."""
    return float(100 * (np.asarray(logits).argmax(1) == np.asarray(labels)).mean())


def _topk(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(1)


def paired(ref: np.ndarray, cand: np.ndarray, labels: np.ndarray, resamples: int = 2000) -> Paired:
    labels = np.asarray(labels)
    ref_ok, cand_ok = ref.argmax(1) == labels, cand.argmax(1) == labels
    b, c = int((ref_ok & ~cand_ok).sum()), int((~ref_ok & cand_ok).sum())
    absdiff = np.abs(ref - cand)
    pct = lambda ok: float(100 * ok.mean())  # noqa: E731
    return Paired(images=len(labels), ref_top1=pct(ref_ok), cand_top1=pct(cand_ok),
                  ref_top5=pct(_topk(ref, labels, 5)), cand_top5=pct(_topk(cand, labels, 5)),
                  agreement=pct(ref.argmax(1) == cand.argmax(1)), ref_only_right=b, cand_only_right=c,
                  mcnemar_p=mcnemar_exact(b, c), diff=pct(cand_ok) - pct(ref_ok),
                  diff_ci95=bootstrap_diff_ci(ref_ok, cand_ok, resamples),
                  max_abs_logit_diff=float(absdiff.max()), mean_abs_logit_diff=float(absdiff.mean()))
