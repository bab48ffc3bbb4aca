"""Which images calibrate a model, recorded so the choice can be checked and reused.

Calibration images come from the training split: by default a seeded sample of the part held out
for validation. The rest of that held-out part scores the accuracy guard, so no image both sets the
ranges and judges them. The manifest names every image; evaluation later refuses to score a model
on images its calibration saw. The images come through ``data.for_card`` like every other step's.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wrn_deploy.data import for_card
from wrn_deploy.errors import UserError
from wrn_deploy.limits import CALIB_IMAGE_PERCENTILE, CALIB_MIN_IMAGES

MANIFEST_FORMAT = "wrn-deploy.calibration/1"


@dataclass
class CalibrationData:
    calib: object        # data.Selection: images that set the ranges
    guard: object        # data.Selection: held-out images that score FP32 against INT8
    identity: dict       # the dataset's identity (name, source, split sizes, hashes)
    split: str


def choose(card, data: str | None, data_dir, size: int, seed: int, split: str = "val",
           allow_other_data: bool = False, skip_bad: bool = False) -> CalibrationData:
    if size < CALIB_MIN_IMAGES:
        raise UserError(f"--calib-size {size} is too small: calibration needs at least {CALIB_MIN_IMAGES} images")
    kw = dict(allow_other_data=allow_other_data, skip_bad=skip_bad)
    pool = for_card(card, split, data, data_dir, **kw)
    held_out = pool if split == "val" else for_card(card, "val", data, data_dir, **kw)
    if size >= len(pool):
        raise UserError(f"--calib-size {size} leaves no {split} images for the accuracy guard "
                        f"({len(pool)} available)")
    from wrn_deploy.data.permutation import randperm

    calib = pool.subset(np.sort(randperm(len(pool), seed)[:size]))
    seen = set(calib.ids)
    guard = held_out.subset([i for i, k in enumerate(held_out.ids) if k not in seen])
    return CalibrationData(calib, guard, pool.identity, split)


def ids_digest(ids: list) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def legacy_layout(target: str) -> str:
    """The layout of a manifest written before placements existed: Conv/Gemm inputs for tensorrt."""
    return "conv" if target == "tensorrt" else "all"


def make_manifest(data: CalibrationData, model_sha256: str, target: str, method: str, percentile: float,
                  seed: int, layout: str | None = None, quantizer: str = "wrn-deploy") -> dict:
    # The target and the placement (layout) decide which tensors get ranges: Conv/Gemm inputs, those
    # plus the residual Add inputs, or every quantizable tensor. The quantizer decides who computes
    # them (ModelOpt keeps its own and caches none).
    return {"format": MANIFEST_FORMAT, "model_sha256": model_sha256, "target": target,
            "layout": layout or legacy_layout(target), "quantizer": quantizer, "dataset": data.identity,
            "split": f"train ({'held-out validation part' if data.split == 'val' else 'training part'})",
            "seed": seed, "size": len(data.calib), "method": method,
            "percentile": {"percentile": percentile, "image-percentile": CALIB_IMAGE_PERCENTILE}.get(method),
            "ids_sha256": ids_digest(data.calib.ids), "images_sha256": data.calib.part.digest(),
            "ids": data.calib.ids, "image_sha256": data.calib.part.image_digests()}


def calibration_folder(root: Path, arch: str, manifest: dict) -> Path:
    """One folder per (model, images, method, placement, quantizer): the same inputs find the same
    cached ranges. The TensorRT Conv-only placement by wrn-deploy keeps the name it had before
    placements existed, so folders made then are still found."""
    tag = manifest["method"] + (f"{manifest['percentile']:g}" if manifest["percentile"] else "")
    target = manifest["target"]
    layout = manifest.get("layout", legacy_layout(target))
    if layout != legacy_layout(target):
        target += "-" + layout.replace("+", "-")
    if manifest.get("quantizer", "wrn-deploy") != "wrn-deploy":
        target += "-" + manifest["quantizer"]
    name = f"{arch}-{manifest['model_sha256'][:10]}-{target}-{tag}-{manifest['size']}"
    return Path(root) / f"{name}-{manifest['ids_sha256'][:8]}"


def check_cached(folder: Path, manifest: dict, copy_to: Path) -> bool:
    """True when ``folder`` holds ranges made from exactly these inputs, copied to ``copy_to`` (what
    quantization reads: the bytes that were checked, whatever happens to the shared folder later);
    an error when it holds ranges made for something else."""
    path = folder / "manifest.json"
    if not path.exists():
        return False
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON; delete the folder to recalibrate") from None
    defaults = {"layout": legacy_layout(manifest["target"]), "quantizer": "wrn-deploy"}
    for key in ("model_sha256", "target", "layout", "quantizer", "ids_sha256", "images_sha256", "method",
                "percentile"):
        if old.get(key, defaults.get(key)) != manifest[key]:
            raise UserError(f"the calibration cache in {folder} was made for another {key.split('_')[0]} "
                            f"({str(old.get(key))[:16]} != {str(manifest[key])[:16]}); delete it or "
                            "choose another --calib-dir")
    ranges = folder / "ranges.json"
    if not ranges.exists() or "ranges_sha256" not in old:  # interrupted, or from before 0.7: calibrate again
        return False
    data = ranges.read_bytes()
    if hashlib.sha256(data).hexdigest() != old["ranges_sha256"]:
        raise UserError(f"{ranges} changed after it was calibrated (its sha256 is not the one in manifest.json); "
                        f"delete {folder} to recalibrate")
    copy_to.write_bytes(data)
    _check_ranges(copy_to, ranges)
    return True


def _check_ranges(path: Path, shown: Path) -> None:
    """Cached ranges are read by ONNX Runtime later; a damaged file (``shown``) is named now, not there."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    try:
        data = load_tensors_data(path)
        ok = bool(data.data) and all(len(td.range_value) == 2 for td in data.data.values())
    except Exception as e:  # noqa: BLE001 - any failure to read it means the same to the user
        ok, why = False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    else:
        why = "no (min, max) range per tensor"
    if not ok:
        raise UserError(f"{shown}: the cached calibration ranges are unreadable ({why[:120]}); delete "
                        f"{shown.parent} to recalibrate")
