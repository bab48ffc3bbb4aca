"""The artifact card: what a checkpoint, ONNX file or engine is, so later steps need nothing else.

A card is a plain JSON dict. It travels inside checkpoints (safetensors metadata), inside ONNX files
(metadata_props) and beside engines, and is written next to each artifact for people to read.
"""

import platform
import time
from importlib import metadata

from wrn_deploy import __version__
from wrn_deploy.errors import UserError

FORMAT = "wrn-deploy.card/1"
REQUIRED = ("format", "arch", "num_classes", "classes", "input_size", "mean", "std", "precision")


def versions(*packages: str) -> dict:
    """Installed versions of the packages that made an artifact (read from metadata, no import)."""
    out = {"python": platform.python_version(), "wrn_deploy": __version__}
    for name in ("torch", "torchvision", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def make_card(arch: str, classes: list, input_size: int, mean, std, **extra) -> dict:
    card = {"format": FORMAT, "arch": arch, "num_classes": len(classes), "classes": list(classes),
            "input_size": int(input_size), "mean": [float(v) for v in mean],
            "std": [float(v) for v in std], "precision": "fp32",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    card.update(extra)
    return card


def validate_card(card: dict, where: str) -> dict:
    if not isinstance(card, dict):
        raise UserError(f"{where}: the card is not a JSON object")
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise UserError(f"{where}: the card lacks {', '.join(missing)}")
    if card["format"] != FORMAT:
        raise UserError(f"{where}: card format {card['format']!r} is not {FORMAT!r}")
    if len(card["classes"]) != card["num_classes"]:
        raise UserError(f"{where}: the card names {len(card['classes'])} classes but says "
                        f"num_classes={card['num_classes']}")
    return card
