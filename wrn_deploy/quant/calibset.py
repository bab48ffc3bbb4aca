"""Which images calibrate a model, recorded so the choice can be checked and reused.

Calibration images come from the training split: by default a seeded sample of the part held out
for validation. The rest of that held-out part scores the accuracy guard, so no image both sets the
ranges and judges them. The manifest names every image; evaluation later refuses to score a model
on images its calibration saw.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from wrn_deploy.data import load_dataset
from wrn_deploy.data.sources import TensorSplit
from wrn_deploy.errors import UserError

MANIFEST_FORMAT = "wrn-deploy.calibration/1"
MIN_IMAGES = 16


@dataclass
class CalibrationData:
    calib: TensorSplit   # images that set the ranges
    guard: TensorSplit   # held-out images that score FP32 against INT8
    identity: dict       # the dataset's identity (name, source, split sizes, hashes)
    split: str


def _same_split_as_training(card: dict, dataset: str) -> tuple:
    """Reuse the training run's validation size and seed, so 'held out' means the same images."""
    ident = card.get("dataset") or {}
    if ident.get("name") == dataset:
        return ident.get("val_size"), ident.get("split_seed", 0)
    return None, 0


def _images_only(split, name: str) -> TensorSplit:
    if not isinstance(split, TensorSplit):
        raise UserError(f"calibration needs images held in memory; {name} is an on-disk (large-image) set")
    return split


def choose(card: dict, dataset: str, data_dir, size: int, seed: int, split: str = "val") -> CalibrationData:
    if size < MIN_IMAGES:
        raise UserError(f"--calib-size {size} is too small: calibration needs at least {MIN_IMAGES} images")
    val_size, split_seed = _same_split_as_training(card, dataset)
    data = load_dataset(dataset, data_dir, val_size, split_seed, progress=False)
    pool = _images_only(data.val if split == "val" else data.train, dataset)
    shape = tuple(pool.images.shape[1:])
    want = (3, card["input_size"], card["input_size"])
    if shape != want:
        raise UserError(f"{dataset} images are {shape[0]}x{shape[1]}x{shape[2]}; the model takes "
                        f"{want[0]}x{want[1]}x{want[2]}")
    if data.num_classes != card["num_classes"]:
        raise UserError(f"{dataset} has {data.num_classes} classes; the model has {card['num_classes']}")
    if size >= len(pool):
        raise UserError(f"--calib-size {size} leaves no {split} images for the accuracy guard "
                        f"({len(pool)} available)")
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    calib = pool.subset(perm[:size].sort().values)
    seen = set(calib.ids)
    guard = data.val.subset(torch.tensor([i for i, k in enumerate(data.val.ids) if k not in seen]))
    return CalibrationData(calib, guard, data.identity, split)


def ids_digest(ids: list) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def make_manifest(data: CalibrationData, model_sha256: str, target: str, method: str, percentile: float,
                  seed: int) -> dict:
    # The target decides which tensors get ranges (Conv/Gemm inputs, or every quantizable tensor).
    return {"format": MANIFEST_FORMAT, "model_sha256": model_sha256, "target": target, "dataset": data.identity,
            "split": f"train ({'held-out validation part' if data.split == 'val' else 'training part'})",
            "seed": seed, "size": len(data.calib), "method": method,
            "percentile": percentile if method == "percentile" else None,
            "ids_sha256": ids_digest(data.calib.ids), "images_sha256": data.calib.digest(),
            "ids": data.calib.ids, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def calibration_folder(root: Path, arch: str, manifest: dict) -> Path:
    """One folder per (model, images, method): the same inputs find the same cached ranges."""
    tag = manifest["method"] + (f"{manifest['percentile']:g}" if manifest["percentile"] else "")
    name = f"{arch}-{manifest['model_sha256'][:10]}-{manifest['target']}-{tag}-{manifest['size']}"
    return Path(root) / f"{name}-{manifest['ids_sha256'][:8]}"


def check_cached(folder: Path, manifest: dict) -> bool:
    """True when ``folder`` holds ranges made from exactly these inputs; an error when it holds
    ranges made for something else."""
    path = folder / "manifest.json"
    if not path.exists():
        return False
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON; delete the folder to recalibrate") from None
    for key in ("model_sha256", "target", "ids_sha256", "images_sha256", "method", "percentile"):
        if old.get(key) != manifest[key]:
            raise UserError(f"the calibration cache in {folder} was made for another {key.split('_')[0]} "
                            f"({str(old.get(key))[:16]} != {str(manifest[key])[:16]}); delete it or "
                            "choose another --calib-dir")
    return (folder / "ranges.json").exists()
