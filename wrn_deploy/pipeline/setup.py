"""Before any step runs: the options resolved and checked, and the output folder claimed (one
pipeline at a time; never a folder that holds anything else)."""

import contextlib
import json
import re
from dataclasses import replace
from pathlib import Path

from wrn_deploy.errors import UserError
from wrn_deploy.fileio import ensure_writable_dir, folder_lock, write_json

MARKER, FORMAT = "pipeline.json", "wrn-deploy.pipeline/1"


def resolve(opts):
    """Defaults filled in, and every option a step would refuse refused now, before any work."""
    import torch

    from wrn_deploy.arch import parse_arch
    from wrn_deploy.zoo import find_recipe

    if opts.data_dir and not Path(opts.data_dir).is_dir():
        raise UserError(f"--data-dir {opts.data_dir} does not exist")
    if opts.checkpoint:
        opts = _from_checkpoint(opts)
    else:
        opts = replace(opts, arch=parse_arch(opts.arch or "wrn-16-1").name, data=opts.data or "synthetic")
        find_recipe(opts.arch, opts.data)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", opts.device):
        raise UserError(f"--device {opts.device!r}: use auto, cpu, cuda or cuda:N")
    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    _check_calib_size(opts)
    out = opts.out or Path("runs") / f"{opts.arch}-{opts.data}-pipeline"
    return replace(opts, out=Path(out))


def _from_checkpoint(opts):
    from wrn_deploy.card import read_card

    card = read_card(opts.checkpoint)
    if card.kind != "checkpoint":
        raise UserError(f"--checkpoint {opts.checkpoint} is an {card.kind} file; give a trained .safetensors checkpoint")
    if opts.arch and opts.arch != card.arch:
        raise UserError(f"--arch {opts.arch} but the checkpoint is a {card.arch}; leave --arch out")
    name = (card.dataset or {}).get("name")
    if opts.data and opts.data != name:
        raise UserError(f"--data {opts.data} but the checkpoint was trained on {name}; the pipeline scores a model "
                        "on its own dataset (use eval --allow-other-data for other data)")
    if opts.epochs:
        raise UserError("--epochs trains; with --checkpoint nothing is trained")
    return replace(opts, arch=card.arch, data=name)


def _check_calib_size(opts) -> None:
    """INT8 calibration takes --calib-size of the images held out of training, and the accuracy guard
    needs enough of the rest for its bound (quantize's own check): too many is refused now, not
    after an hour of training. Checked where the held-out count is known before any data is read."""
    from wrn_deploy.data.table import held_out_size
    from wrn_deploy.limits import CALIB_MIN_IMAGES, guard_min_images

    if opts.checkpoint:
        from wrn_deploy.card import read_card

        held = (read_card(opts.checkpoint).dataset or {}).get("val")
    else:  # a --data-dir can hold a folder of any size: known once it is read
        held = held_out_size(opts.data) if opts.data == "synthetic" or not opts.data_dir else None
    if not isinstance(held, int) or isinstance(held, bool) or held <= 0:
        return
    drop = opts.max_int8_drop
    need = guard_min_images(drop) if drop is not None else 1
    if held - opts.calib_size >= need:
        return
    bound = f"the INT8 guard's {drop:g}-point bound needs {need}" if drop is not None else "the guard needs one"
    fix = (f"give --calib-size {held - need} or fewer" if held - need >= CALIB_MIN_IMAGES else
           "raise --max-int8-drop")
    raise UserError(f"--calib-size {opts.calib_size} leaves {max(held - opts.calib_size, 0)} of the {held} images "
                    f"held out of {opts.data}'s training split, and {bound}: {fix}")


@contextlib.contextmanager
def claim_folder(opts):
    """OUT is new, empty, or an earlier pipeline's folder (it has pipeline.json); it is locked while
    the pipeline runs. A run refused before its first step leaves no new folder behind."""
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder for the pipeline's output")
    made = not out.exists()
    if not made and not (out / MARKER).is_file() and any(p.name != ".lock" for p in out.iterdir()):
        raise UserError(f"{out} holds files that no pipeline wrote; give a new or empty folder, "
                        "or the folder of an earlier pipeline run")
    if (out / MARKER).is_file():
        _valid_marker(out / MARKER)  # a foreign marker is refused before the lock file is made
    ensure_writable_dir(out)
    try:
        with folder_lock(out, "wrn-deploy pipeline"):
            _check_marker(out)
            yield out
    finally:
        if made and {p.name for p in out.iterdir()} <= {".lock", MARKER}:
            for p in out.iterdir():
                p.unlink()
            out.rmdir()


def _check_marker(out: Path) -> None:
    """pipeline.json: the format and the folder's run id (random, made once: step records digest it,
    so a record copied from another pipeline folder is not reused)."""
    import secrets

    from wrn_deploy.card import now

    marker = out / MARKER
    if marker.is_file():
        data = _valid_marker(marker)
        if data.get("run"):
            return
        write_json(marker, {**data, "run": secrets.token_hex(16)})  # a folder from before run ids
        return
    write_json(marker, {"format": FORMAT, "created": now(), "run": secrets.token_hex(16)})


def _valid_marker(marker: Path) -> dict:
    try:
        data = json.loads(marker.read_text())
        ok = data.get("format") == FORMAT and isinstance(data.get("run", ""), str)
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise UserError(f"{marker} is not a wrn-deploy pipeline marker ({FORMAT}); give another folder")
    return data


def run_id(out) -> str:
    """The run id of the pipeline folder ``out`` ("" where it has none yet)."""
    try:
        data = json.loads((Path(out) / MARKER).read_text())
    except (OSError, ValueError):
        return ""
    return data.get("run", "") if isinstance(data, dict) and isinstance(data.get("run", ""), str) else ""
