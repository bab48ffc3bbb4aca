"""``eval``: score candidates (engines, ONNX files, checkpoints) and the PyTorch FP32 reference on the
same images, pair each candidate with the one reference run, apply the gates of its precision.

Every model runs through ``runner_for``; the images come from ``data.for_card``.
"""

from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.card import Card, read_card
from wrn_deploy.errors import UserError
from wrn_deploy.limits import BATCH, Gates
from wrn_deploy.parity.compare import compare, run, run_all
from wrn_deploy.runners import runner_for


@dataclass
class EvalOptions:
    data: str | None = None
    data_dir: str | None = None
    split: str = "test"
    limit: int | None = None
    batch: int = BATCH
    reference: str | None = None
    device: str = "cpu"
    provider: str = "cpu"
    gates: Gates = field(default_factory=Gates)
    allow_calibration_overlap: bool = False
    verify_key: str | None = None
    allow_host_code: bool = False
    progress: bool = True


@dataclass
class Candidate:
    path: Path
    card: Card | None     # None: a plan without a manifest (its precision is unknown)
    runner: object

    @property
    def compute(self) -> str:
        return self.card.precision.compute if self.card else "unknown"


def candidate(path, opts: EvalOptions) -> Candidate:
    """The candidate's runner (checked, not loaded) and card."""
    runner = runner_for(path, provider=opts.provider, device=opts.device, verify_key=opts.verify_key,
                        allow_host_code=opts.allow_host_code)
    runner.check()  # fail before the images load, not after
    path = Path(path)
    try:
        card = read_card(path)
    except UserError:
        if path.suffix.lower() not in (".plan", ".engine") or Path(str(path) + ".json").exists():
            raise
        card = None
    return Candidate(path, card, runner)


def reference_checkpoint(card: Card | None, opts: EvalOptions) -> Path:
    """--reference, else the trained checkpoint at the root of the candidate's lineage, unchanged."""
    from wrn_deploy.fileio import sha256_file

    if opts.reference:
        return Path(opts.reference)
    origin = card.origin if card else None
    if origin is None:
        raise UserError("the candidate's card names no source checkpoint: pass --reference CHECKPOINT")
    if not Path(origin.path).is_file():
        raise UserError(f"the candidate's source checkpoint {origin.path} is not here: pass --reference")
    if sha256_file(origin.path) != origin.sha256:
        raise UserError(f"{origin.path} changed since the candidate was made (sha256 differs): pass --reference")
    return Path(origin.path)


def check_overlap(card: Card | None, ids: list, opts: EvalOptions) -> int:
    calib = set((card.quantization if card else {}).get("calibration_ids", []))
    overlap = len(calib & set(ids))
    if overlap and not opts.allow_calibration_overlap:
        raise UserError(f"{overlap} of the {len(ids)} evaluation images calibrated this model; evaluate on "
                        "other images, or pass --allow-calibration-overlap to score it anyway")
    return overlap


def _same_model(cards: list) -> Card:
    first = cards[0]
    for c in cards[1:]:
        if (c.arch, c.classes, c.input_size) != (first.arch, first.classes, first.input_size):
            raise UserError(f"the candidates are different models ({first.arch} vs {c.arch}); evaluate them apart")
    return first


def evaluate(paths: list, opts: EvalOptions) -> list:
    """One report per candidate; the reference runs once for all of them."""
    import torch

    from wrn_deploy.data import for_card

    cands = [candidate(p, opts) for p in paths]
    refs = {reference_checkpoint(c.card, opts).resolve() for c in cands}
    if len(refs) != 1:
        raise UserError("the candidates come from different checkpoints; pass --reference or evaluate them apart")
    ref_path = refs.pop()
    ref_runner = runner_for(ref_path)
    ref_runner.check()
    model = _same_model([c.card for c in cands if c.card] or [read_card(ref_path)])
    chosen = for_card(model, opts.split, opts.data, opts.data_dir, progress=opts.progress)
    if opts.limit:
        chosen = chosen.first(opts.limit)
    overlaps = [check_overlap(c.card, chosen.ids, opts) for c in cands]
    images, labels = chosen.images(), chosen.labels.numpy()
    results = run_all({i: c.runner for i, c in enumerate(cands)}, images, opts.batch, opts.progress)
    ref = run(ref_runner, images, opts.batch, opts.progress)
    reports = []
    for i, c in enumerate(cands):
        res = results[i]
        rep = {"candidate": {"kind": c.card.kind if c.card else "plan", "path": str(c.path), "runner": res.runner,
                             "precision": str(c.card.precision) if c.card else "unknown", "arch": model.arch,
                             "seconds": round(res.seconds, 2)},
               "reference": {"path": str(ref_path), "runner": ref.runner, "seconds": round(ref.seconds, 2)},
               "data": {"dataset": chosen.dataset, "split": opts.split, "images": len(chosen),
                        "calibration_overlap": overlaps[i]},
               **compare(ref, res, labels, c.compute, opts.gates),
               "versions": _versions(), "torch_threads": torch.get_num_threads()}
        reports.append(rep)
    return reports


def _versions() -> dict:
    from wrn_deploy.card import versions

    return versions("onnx", "onnxruntime", "tensorrt")
