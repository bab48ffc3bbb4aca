"""Run, then compare (Polygraphy's Comparator.run / compare_accuracy): every runner sees the same
images once; any number of candidates are then paired against one reference run."""

from dataclasses import dataclass

import numpy as np

from wrn_deploy.limits import Gates
from wrn_deploy.parity.stats import paired


@dataclass
class RunResult:
    runner: str          # the runner's name, e.g. onnxruntime-cpu
    logits: np.ndarray   # float32, N x classes
    seconds: float       # time inside the runner's inference calls


def run(runner, images, batch: int, progress: bool = False) -> RunResult:
    """Activate ``runner``, infer every image, deactivate; the logits and the time spent inferring."""
    with runner:
        logits = runner.infer_all(images, batch, progress)
        seconds = float(sum(runner.inference_times))
    return RunResult(runner.name, logits, seconds)


def compare(ref: RunResult, cand: RunResult, labels, compute: str, gates: Gates) -> dict:
    """Paired statistics of ``cand`` against ``ref`` and the gates of the candidate's precision."""
    stats = paired(ref.logits, cand.logits, np.asarray(labels))
    checked = gates.check(stats, compute)
    return {"stats": stats.to_dict(), "gates": [{"gate": g, "measured": m, "passed": ok} for g, m, ok in checked],
            "passed": all(ok for _, _, ok in checked)}
