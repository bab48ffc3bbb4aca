"""``eval``: score candidates (engines, ONNX files, checkpoints) and the PyTorch FP32 reference on the
same images, pair each candidate with the one reference run, apply the gates of its precision.

Every model runs through ``runner_for``; the images come from ``data.for_card``.
"""

from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.card import Card, read_card
from wrn_deploy.cpuinfo import describe
from wrn_deploy.errors import UserError
from wrn_deploy.limits import BATCH, Gates
from wrn_deploy.parity.compare import RunResult, compare, run
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
    runtime: str = "onnxruntime"    # what runs ONNX candidates: onnxruntime or openvino
    precision_hint: str = "f32"     # OpenVINO's inference precision
    gates: Gates = field(default_factory=Gates)
    allow_calibration_overlap: bool = False
    allow_other_data: bool = False
    skip_bad_images: bool = False
    verify_key: str | None = None
    allow_host_code: bool = False
    allow_unverified: bool = False
    progress: bool = True


@dataclass
class Candidate:
    path: Path
    card: Card | None     # None: a plan without a manifest (its precision is unknown)
    runner: object

    @property
    def compute(self) -> str:
        """What the candidate computed in, so the gate is that precision's: the card's, except where
        OpenVINO ran a float model in BF16 (read back from the compiled model after it ran)."""
        compute = self.card.precision.compute if self.card else "unknown"
        if getattr(self.runner, "ran_precision", None) == "bf16" and compute in ("fp32", "fp16"):
            return "bf16"
        return compute


def candidate(path, opts: EvalOptions) -> Candidate:
    """The candidate's runner (checked, not loaded) and card."""
    runner = runner_for(path, provider=opts.provider, device=opts.device, verify_key=opts.verify_key,
                        allow_host_code=opts.allow_host_code, allow_unverified=opts.allow_unverified,
                        runtime=opts.runtime, precision_hint=opts.precision_hint)
    runner.check()  # fail before the images load, not after
    path = Path(path)
    try:
        card = read_card(path)
    except UserError:
        if path.suffix.lower() not in (".plan", ".engine") or Path(str(path) + ".json").exists():
            raise
        card = None
    return Candidate(path, card, runner)


def reference_checkpoint(card: Card | None, opts: EvalOptions, candidate_path) -> Path:
    """--reference, else the trained checkpoint at the root of the candidate's lineage, unchanged
    (the card records it relative to the candidate's folder). Errors name the candidate (several
    may be given) and why."""
    from wrn_deploy.fileio import sha256_file

    if opts.reference:
        return Path(opts.reference)
    origin = card.origin if card else None
    if card is None:
        raise UserError(f"{candidate_path} has no card (a plan without its manifest), so its source checkpoint is unknown: "
                        "pass --reference CHECKPOINT")
    if origin is None:
        raise UserError(f"{candidate_path}: its card names no source checkpoint (a {card.kind} "
                        f"{'trained, not derived' if card.kind == 'checkpoint' else 'made without wrn-deploy lineage'}"
                        "): pass --reference CHECKPOINT")
    path = Path(candidate_path).parent / origin.path
    if not path.is_file():
        raise UserError(f"{candidate_path}: its source checkpoint {origin.path} is not here (moved, or made on another "
                        "machine): pass --reference CHECKPOINT")
    if sha256_file(path) != origin.sha256:
        raise UserError(f"{candidate_path}: its source checkpoint {path} changed since {candidate_path} was made "
                        "(sha256 differs): pass --reference CHECKPOINT")
    return path


def check_overlap(card: Card | None, digests: list, opts: EvalOptions) -> int:
    """How many evaluation images are, by content, images that calibrated the model (a copy under
    another name counts); refused unless allowed."""
    calib = set((card.quantization if card else {}).get("calibration_image_sha256", []))
    overlap = sum(1 for d in digests if d in calib)
    if overlap and not opts.allow_calibration_overlap:
        raise UserError(f"{overlap} of the {len(digests)} evaluation images calibrated this model (same pixels); "
                        "evaluate on other images, or pass --allow-calibration-overlap to score it anyway")
    return overlap


def _same_model(cards: list, reference: Card, ref_path) -> Card:
    """The candidates and the reference must be one model: architecture, classes and input size."""
    first = cards[0] if cards else reference
    for c in [*cards[1:], reference]:
        if (c.arch, c.classes, c.input_size) != (first.arch, first.classes, first.input_size):
            what = "the reference " + str(ref_path) if c is reference else "the candidates"
            raise UserError(f"{what}: a {c.arch} with {c.num_classes} classes at {c.input_size} px does not match "
                            f"the {first.arch} with {first.num_classes} classes at {first.input_size} px")
    return first


def input_files(paths: list, opts: EvalOptions) -> list:
    """Every file eval reads: the candidates, the reference, and their cards, manifests and signatures
    (what no report may overwrite)."""
    files = [Path(p) for p in paths]
    for p in paths:
        try:
            files.append(reference_checkpoint(read_card(p), opts, p))
        except UserError:
            pass  # evaluate() will say what is wrong with it
    if opts.reference:
        files.append(Path(opts.reference))
    return files + [q for f in files for q in (f.with_suffix(".json"), Path(f"{f}.json"), Path(f"{f}.sig"))]


def score(cand: Candidate, ref: RunResult, images, labels, digests: list, opts: EvalOptions) -> dict:
    """Run ``cand`` on ``images`` and pair it with ``ref``, a reference run made by the caller (eval's
    own, or the pipeline's recorded one): the runner, its time, the calibration overlap (refused
    unless allowed), the paired statistics and the gates of the candidate's precision."""
    overlap = check_overlap(cand.card, digests, opts)
    res = run(cand.runner, images, opts.batch, opts.progress)
    return {"runner": res.runner, "seconds": round(res.seconds, 2), "calibration_overlap": overlap,
            "computed_in": cand.compute, **runtime_precision(cand.runner),
            **compare(ref, res, labels, cand.compute, opts.gates)}


def runtime_precision(runner) -> dict:
    """For OpenVINO: the precision asked for and the one the compiled model used (a CPU without BF16
    instructions computes in f32 whatever the hint). Empty for other runners."""
    if getattr(runner, "ran_precision", None) is None:
        return {}
    return {"precision_hint": {"requested": runner.precision, "ran": runner.ran_precision}}


def evaluate(paths: list, opts: EvalOptions) -> list:
    """One report per candidate; the reference runs once for all of them."""
    import torch

    from wrn_deploy.data import for_card

    cands = [candidate(p, opts) for p in paths]
    origins = {c.path: reference_checkpoint(c.card, opts, c.path).resolve() for c in cands}
    refs = set(origins.values())
    if len(refs) != 1:
        (a, ra), (b, rb) = [next((p, r) for p, r in origins.items() if r == ref) for ref in sorted(refs)[:2]]
        raise UserError(f"the candidates come from different checkpoints ({a}: {ra.name}, {b}: {rb.name}); pass "
                        "--reference or evaluate them apart")
    ref_path = refs.pop()
    ref_runner = runner_for(ref_path)
    ref_runner.check()
    model = _same_model([c.card for c in cands if c.card], read_card(ref_path), ref_path)
    chosen = for_card(model, opts.split, opts.data, opts.data_dir, progress=opts.progress,
                      allow_other_data=opts.allow_other_data, skip_bad=opts.skip_bad_images)
    if opts.limit:
        chosen = chosen.first(opts.limit)
    digests = chosen.part.image_digests()
    for c in cands:  # refuse before anything runs
        check_overlap(c.card, digests, opts)
    images, labels = chosen.images(), chosen.labels
    ref = run(ref_runner, images, opts.batch, opts.progress)
    reports = []
    for c in cands:
        s = score(c, ref, images, labels, digests, opts)
        reports.append({
            "candidate": {"kind": c.card.kind if c.card else "plan", "path": str(c.path), "runner": s["runner"],
                          "precision": str(c.card.precision) if c.card else "unknown", "arch": model.arch,
                          "computed_in": s["computed_in"], **({"precision_hint": s["precision_hint"]}
                                                             if "precision_hint" in s else {}),
                          "seconds": s["seconds"]},
            "reference": {"path": str(ref_path), "runner": ref.runner, "seconds": round(ref.seconds, 2)},
            "data": {"dataset": chosen.dataset, "split": opts.split, "images": len(chosen),
                     "classes": list(model.classes),
                     "calibration_overlap": s["calibration_overlap"],
                     "skipped_unreadable": chosen.identity.get("skipped_unreadable", 0)},
            "stats": s["stats"], "gates": s["gates"], "passed": s["passed"],
            "versions": _versions(), "machine": describe(), "torch_threads": torch.get_num_threads()})
    return reports


def _versions() -> dict:
    from wrn_deploy.card import versions

    return versions("onnx", "onnxruntime", "openvino", "tensorrt")
