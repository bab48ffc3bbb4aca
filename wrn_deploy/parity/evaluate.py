"""``eval``: score a candidate and the PyTorch FP32 reference on the same images, pair the results,
apply the gates of the candidate's precision."""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wrn_deploy.errors import UserError
from wrn_deploy.parity.gates import Gates, check
from wrn_deploy.parity.stats import paired


@dataclass
class EvalOptions:
    dataset: str | None = None
    data_dir: str | None = None
    split: str = "test"
    limit: int | None = None
    batch: int = 64
    reference: str | None = None
    device: str = "cpu"
    provider: str = "cpu"
    gates: Gates = field(default_factory=Gates)
    allow_calibration_overlap: bool = False
    verify_key: str | None = None
    allow_host_code: bool = False
    progress: bool = True


def candidate(kind: str, path, opts: EvalOptions):
    """(runner, card) for the candidate; reads only metadata until the runner is activated."""
    from wrn_deploy.runners.ort_runner import OrtRunner
    from wrn_deploy.runners.torch_runner import TorchRunner

    if kind == "onnx":
        from wrn_deploy.export.onnx_export import read_card

        return OrtRunner(path, opts.provider), read_card(path)
    if kind == "checkpoint":
        from wrn_deploy.checkpoint import load_checkpoint

        return TorchRunner(path, opts.device), load_checkpoint(path).card
    from wrn_deploy.runners.trt_runner import TrtRunner

    from wrn_deploy.engine.trt_api import import_tensorrt, require_cuda

    runner = TrtRunner(path, opts.verify_key, opts.allow_host_code)
    manifest = runner.preflight()
    import_tensorrt()  # fail before the images load, not after
    require_cuda()
    if manifest is None:
        if not opts.reference:
            raise UserError(f"{path} has no manifest, so its card is unknown: pass --reference CHECKPOINT")
        from wrn_deploy.checkpoint import load_checkpoint

        return runner, dict(load_checkpoint(opts.reference).card, precision="unknown")
    return runner, manifest["card"]


def reference_checkpoint(card: dict, opts: EvalOptions) -> Path:
    from wrn_deploy.fileio import sha256_file

    if opts.reference:
        return Path(opts.reference)
    src = card.get("source_checkpoint")
    if not src or not Path(src).is_file():
        raise UserError(f"the candidate's source checkpoint {src or '(none recorded)'} is not here: pass --reference")
    if card.get("source_checkpoint_sha256") and sha256_file(src) != card["source_checkpoint_sha256"]:
        raise UserError(f"{src} changed since the candidate was exported (sha256 differs): pass --reference")
    return Path(src)


def images_for(card: dict, opts: EvalOptions):
    from wrn_deploy.data import load_dataset

    ident = card.get("dataset") or {}
    name = opts.dataset or ident.get("name")
    if not name:
        raise UserError("the candidate's card names no dataset: pass --data")
    same = ident.get("name") == name
    data = load_dataset(name, opts.data_dir, ident.get("val_size") if same else None,
                        ident.get("split_seed", 0) if same else 0, progress=opts.progress)
    if data.num_classes != card["num_classes"]:
        raise UserError(f"{name} has {data.num_classes} classes; the model has {card['num_classes']}")
    split = data.test if opts.split == "test" else data.val
    if not hasattr(split, "images"):
        raise UserError(f"{name} is an on-disk set; eval reads in-memory (small-image) sets for now")
    if split.images.shape[-1] != card["input_size"]:
        raise UserError(f"{name} images are {split.images.shape[-1]} px; the model takes {card['input_size']} px")
    if opts.limit:
        split = split.subset(np.arange(min(opts.limit, len(split))))
    return name, split


def check_overlap(card: dict, ids: list, opts: EvalOptions) -> int:
    calib = set((card.get("quantization") or {}).get("calibration_ids", []))
    overlap = len(calib & set(ids))
    if overlap and not opts.allow_calibration_overlap:
        raise UserError(f"{overlap} of the {len(ids)} evaluation images calibrated this model; evaluate on "
                        "other images, or pass --allow-calibration-overlap to score it anyway")
    return overlap


def evaluate(kind: str, path, opts: EvalOptions) -> dict:
    import torch

    from wrn_deploy.runners.torch_runner import TorchRunner

    runner, card = candidate(kind, path, opts)
    ref_path = reference_checkpoint(card, opts)
    name, split = images_for(card, opts)
    overlap = check_overlap(card, split.ids, opts)
    images = split.images.float().div(255)
    t0 = time.perf_counter()
    with runner:
        cand = runner.infer_all(images, opts.batch, opts.progress)
    cand_s = time.perf_counter() - t0
    with TorchRunner(ref_path, "cpu", "fp32") as ref_runner:
        ref = ref_runner.infer_all(images, opts.batch, opts.progress)
    stats = paired(ref, cand, split.labels.numpy())
    precision = card.get("precision", "fp32")
    gates = check(stats, precision if precision in ("fp16", "int8") else "fp32", opts.gates)
    return {"candidate": {"kind": kind, "path": str(path), "runner": runner.name, "precision": precision,
                          "arch": card["arch"], "seconds": round(cand_s, 2)},
            "reference": {"path": str(ref_path), "runner": "torch-cpu-fp32"},
            "data": {"dataset": name, "split": opts.split, "images": len(split), "calibration_overlap": overlap},
            "stats": stats.to_dict(), "gates": [{"gate": g, "measured": m, "passed": ok} for g, m, ok in gates],
            "passed": all(ok for _, _, ok in gates), "versions": _versions(), "torch_threads": torch.get_num_threads()}


def _versions() -> dict:
    from wrn_deploy.card import versions

    return versions("onnx", "onnxruntime", "tensorrt")
