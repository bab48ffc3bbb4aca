"""Checkpoints: one safetensors file (weights, optional training state, the card in its metadata)
plus a readable JSON copy of the card beside it. Loading never unpickles."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.card import Card, card_from_safetensors_metadata, safetensors_metadata, write_json_copy
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import atomic_output

MODEL, TRAIN = "model.", "train."


@dataclass
class Checkpoint:
    state: dict
    card: Card
    train_tensors: dict = field(default_factory=dict)
    train_meta: dict = field(default_factory=dict)


def save_checkpoint(path, state: dict, card: Card, train_tensors: dict | None = None,
                    train_meta: dict | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {MODEL + k: v.detach().cpu().contiguous() for k, v in state.items()}
    for k, v in (train_tensors or {}).items():
        tensors[TRAIN + k] = v.detach().cpu().contiguous()
    meta = {**safetensors_metadata(card), "train": json.dumps(train_meta or {})}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    write_json_copy(path, card)


def load_checkpoint(path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} " + ("is not a regular file" if path.exists() else "does not exist"))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"checkpoint {path} is corrupt or not a safetensors file ({e})") from None
    card = card_from_safetensors_metadata(meta, str(path))
    if card.kind != "checkpoint":
        raise UserError(f"checkpoint {path}: its card says it is a {card.kind}, not a checkpoint")
    try:
        train_meta = json.loads(meta.get("train", "{}"))
    except json.JSONDecodeError:
        raise UserError(f"checkpoint {path} has unreadable training metadata") from None
    state = {k[len(MODEL):]: v for k, v in tensors.items() if k.startswith(MODEL)}
    train = {k[len(TRAIN):]: v for k, v in tensors.items() if k.startswith(TRAIN)}
    return Checkpoint(state, card, train, train_meta)


def model_from_checkpoint(path, device="cpu") -> tuple:
    """Build the card's architecture and load the weights strictly; returns (model, card)."""
    from wrn_deploy.arch import create_model

    import torch

    ckpt = load_checkpoint(path)
    card = ckpt.card
    # Built on the meta device (shapes, no memory, no random initialisation), then the checkpoint's
    # own tensors are assigned: nothing is initialised only to be overwritten.
    with torch.device("meta"):
        model = create_model(card.arch, num_classes=card.num_classes, dropout=card.dropout)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in ckpt.state.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:1]
        raise UserError(f"checkpoint {path}: the weights do not match the card's {card.arch} with "
                        f"{card.num_classes} classes (first difference: {diff[0][0] if diff else '?'})")
    try:
        dtypes = {k: v.dtype for k, v in model.state_dict().items()}  # as copying into the model would cast
        model.load_state_dict({k: v.to(dtypes[k]) for k, v in ckpt.state.items()}, strict=True, assign=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise UserError(f"checkpoint {path}: the weights do not match the card's {card.arch} "
                        f"with {card.num_classes} classes ({first})") from None
    return model.to(device).eval(), card
