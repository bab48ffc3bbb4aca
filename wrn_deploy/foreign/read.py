"""A foreign checkpoint's tensors: safetensors, or a ``torch.save`` file read with
``weights_only=True`` (which refuses any pickled object but tensors and plain containers)."""

import pickle
import re
from pathlib import Path

from wrn_deploy.errors import UserError

# Where training scripts keep the weights inside a saved dict, most specific first: torchvision and
# timm's train scripts and most ports ("state_dict"), szagoruyko's wide-residual-networks ("params").
CONTAINERS = ("state_dict", "model_state_dict", "params", "model", "net", "state")


def read_tensors(path) -> dict:
    """{name: tensor} of the checkpoint at ``path``, with a DataParallel ``module.`` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} " + ("is not a regular file" if path.exists() else "does not exist"))
    state = _from_safetensors(path) if path.suffix.lower() == ".safetensors" else _unwrap(_torch_load(path), path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _from_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is corrupt or not a safetensors file ({_first_line(e)})") from None


def _torch_load(path: Path):
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found:  # a class or function the safe unpickler will not call
            raise UserError(f"{path} stores Python objects, not only tensors (it pickles {found.group(1)}), and "
                            "wrn-deploy never unpickles code (torch.load weights_only=True): save "
                            "model.state_dict() and import that") from None
        operand = re.search(r"Unsupported operand (\d+)", str(e))
        why = f"pickle instruction {operand.group(1)}" if operand else _first_line(e)
        raise UserError(f"{path} is not a PyTorch checkpoint that loads with weights_only=True ({why} refused; "
                        "files that pickle code or objects are)") from None
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file raises anything from zip to KeyError
        raise UserError(f"{path} is not a PyTorch checkpoint or safetensors file "
                        f"({type(e).__name__}{': ' + _first_line(e) if _first_line(e) else ''})") from None


def _unwrap(obj, path: Path) -> dict:
    """The tensors of a state dict, or of the state dict inside a training checkpoint's dict."""
    if _is_state(obj):
        return dict(obj)
    if isinstance(obj, dict):
        for key in CONTAINERS:
            if _is_state(obj.get(key)):
                return dict(obj[key])
    raise UserError(f"{path} holds no state dict (a dict of tensors, alone or under one of "
                    f"{', '.join(repr(k) for k in CONTAINERS)})")


def _is_state(obj) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else ""
