"""Write a wrn-deploy CIFAR checkpoint's weights as the two PyTorch WRN ports save theirs, for the
worked example in docs/import.md: a trained model whose checkpoints `wrn-deploy import --from
xternalz` and `--from szagoruyko` then read (the layouts are described there).

- xternalz/WideResNet-pytorch: ``model_best.pth.tar``, ``{"epoch", "state_dict", "best_prec1"}``,
  keys as its ``wideresnet.py`` names them, with DataParallel's ``module.`` prefix;
- szagoruyko/wide-residual-networks (PyTorch code): ``model.pt7``, ``{"params", "epoch",
  "optimizer"}``, a flat dict of tensors (convolutions without ``.weight``, no BatchNorm counters).

    python examples/port_checkpoints.py CHECKPOINT.safetensors OUT_FOLDER
"""

import argparse
import re
from pathlib import Path

from wrn_deploy.foreign.layouts import SZAGORUYKO_PARTS, XTERNALZ_PARTS

# wrn-deploy's block part -> the port's name for it: the import's tables, inverted
_XTERNALZ = {ours: theirs for theirs, ours in XTERNALZ_PARTS.items()}
_SZAGORUYKO = {ours: theirs for theirs, ours in SZAGORUYKO_PARTS.items()}


def port_key(key: str, layout: str, blocks_per_group: int) -> str | None:
    """The port's name for a wrn-deploy key (None: the port keeps no such tensor)."""
    xt = layout == "xternalz"
    if key == "stem.weight":
        return "conv1.weight" if xt else "conv0"
    if key.startswith(("bn.", "fc.")):
        if key.endswith("num_batches_tracked") and not xt:
            return None
        return ("bn1." + key[3:]) if xt and key.startswith("bn.") else key
    m = re.fullmatch(r"blocks\.(\d+)\.(bns\.[01]|convs\.[01]|shortcut)\.(\w+)", key)
    if m is None:
        raise SystemExit(f"unexpected wrn-deploy key {key}")
    g, i = divmod(int(m.group(1)), blocks_per_group)
    part, leaf = m.group(2), m.group(3)
    if xt:
        return f"block{g + 1}.layer.{i}.{_XTERNALZ[part]}.{leaf}"
    if leaf == "num_batches_tracked":
        return None
    name = f"group{g}.block{i}.{_SZAGORUYKO[part]}"
    return name if part in ("convs.0", "convs.1", "shortcut") else f"{name}.{leaf}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint} is not a file")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists")
    import torch
    from safetensors.torch import load_file

    # wrn-deploy's checkpoint keeps the network under "model." (and training state under "train.")
    state = {k[len("model."):]: v for k, v in load_file(str(args.checkpoint)).items() if k.startswith("model.")}
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("blocks.")}
    per_group = len(blocks) // 3
    args.out.mkdir(parents=True)
    for layout, name in (("xternalz", "model_best.pth.tar"), ("szagoruyko", "model.pt7")):
        port = {key: state[k] for k in sorted(state) if (key := port_key(k, layout, per_group)) is not None}
        if layout == "xternalz":
            saved = {"epoch": 0, "state_dict": {"module." + k: v for k, v in port.items()}, "best_prec1": 0.0}
        else:
            saved = {"params": port, "epoch": 0, "optimizer": {"state": {}, "param_groups": []}}
        torch.save(saved, args.out / name)
        print(f"wrote {args.out / name} ({layout}, {len(port)} tensors)")


if __name__ == "__main__":
    main()
