"""Key names of the WRNs wrn-deploy imports, mapped onto its own networks (docs/import.md describes
each layout). A layout names its keys; the mapping renames them; anything that does not then match
the claimed architecture key for key and shape for shape is refused, never guessed at."""

import re
from dataclasses import dataclass

from wrn_deploy.arch import parse_arch
from wrn_deploy.errors import UserError


@dataclass(frozen=True)
class Layout:
    name: str          # the --from value
    what: str          # whose code writes it, for messages
    cifar: bool        # a CIFAR WRN-d-k (pre-activation basic blocks) or an ImageNet bottleneck WRN


LAYOUTS = {x.name: x for x in (
    Layout("torchvision", "torchvision's wide_resnet50_2/wide_resnet101_2", cifar=False),
    Layout("timm", "timm's wide_resnet50_2/wide_resnet101_2", cifar=False),
    Layout("xternalz", "xternalz/WideResNet-pytorch (wideresnet.py)", cifar=True),
    Layout("szagoruyko", "szagoruyko/wide-residual-networks (pytorch/resnet.py)", cifar=True),
)}
FROM = tuple(LAYOUTS)

# A layout that is recognised but cannot be mapped: meliketoy/wide-resnet.pytorch's blocks compute a
# different function (see docs/import.md), so no renaming makes them wrn-deploy's WRN.
MELIKETOY = ("meliketoy/wide-resnet.pytorch's layout (layerN.i.conv1 with biases, linear.weight): its blocks put "
             "the stride on the second 3x3 convolution, give every convolution a bias and feed the 1x1 shortcut "
             "the raw block input, a different network from the paper's pre-activation WRN that wrn-deploy runs")


def detect(state: dict) -> str | None:
    """Which family of key names ``state`` uses: 'resnet' (torchvision and timm), 'xternalz',
    'szagoruyko', 'meliketoy', or None."""
    keys = set(state)
    if "group0.block0.conv0" in keys:
        return "szagoruyko"
    if "block1.layer.0.conv1.weight" in keys:
        return "xternalz"
    if "linear.weight" in keys and "layer1.0.conv1.weight" in keys:
        return "meliketoy"
    if "layer1.0.conv1.weight" in keys and "fc.weight" in keys:
        return "resnet"
    return None


def check_family(state: dict, layout: Layout, source) -> None:
    found = detect(state)
    want = "resnet" if not layout.cifar else layout.name
    if found == want:
        return
    if found == "meliketoy":
        raise UserError(f"{source} is in {MELIKETOY}; it cannot be imported")
    if found is None:
        first = ", ".join(sorted(state)[:3])
        raise UserError(f"{source} is not a checkpoint of {layout.what}: its keys ({first}, ...) match no WRN "
                        f"layout wrn-deploy imports ({', '.join(FROM)})")
    theirs = "torchvision or timm" if found == "resnet" else found
    raise UserError(f"{source} is laid out as {theirs}'s WRN, not as {layout.what}: pass --from "
                    f"{'torchvision (or timm)' if found == 'resnet' else found}")


# -- the architecture a checkpoint holds, read from its shapes ----------------------------------------
RESNET_DEPTHS = {(3, 4, 6, 3, 0): 50, (3, 4, 23, 3, 0): 101, (3, 8, 36, 3, 0): 152}  # blocks per stage


def _count(state: dict, pattern: str) -> int:
    idx = {int(m.group(1)) for k in state for m in [re.match(pattern, k)] if m}
    return max(idx) + 1 if idx else 0


def held_arch(state: dict, layout: Layout) -> str:
    """The architecture name of the network in ``state`` (a UserError when it is no WRN)."""
    if not layout.cifar:
        blocks = tuple(_count(state, rf"layer{g}\.(\d+)\.") for g in (1, 2, 3, 4, 5))
        depth = RESNET_DEPTHS.get(blocks)
        if "layer1.0.conv3.weight" not in state:
            raise UserError("it is a ResNet of basic blocks (ResNet-18/34), not a bottleneck WRN")
        if depth not in (50, 101):
            raise UserError(f"it has {'/'.join(map(str, blocks[:4]))} blocks per stage, which is no WRN-50-2 or "
                            "WRN-101-2 (3/4/6/3 or 3/4/23/3)")
        inner, base = state["layer1.0.conv2.weight"].shape[0], state["layer1.0.conv3.weight"].shape[0]
        if inner * 2 != base:  # ResNet: 64 inner channels to 256; wide_resnet: 128 to 256
            raise UserError(f"its first block has {inner} inner channels for {base} outputs: a "
                            f"{'plain ResNet' if inner * 4 == base else 'ResNet variant'}-{depth}, not a WRN-{depth}-2")
        return f"wrn-{depth}-2"
    if layout.name == "xternalz":
        groups = [_count(state, rf"block{g}\.layer\.(\d+)\.") for g in (1, 2, 3)]
        first = state.get("block1.layer.0.conv1.weight")
    else:
        groups = [_count(state, rf"group{g}\.block(\d+)\.") for g in (0, 1, 2)]
        first = state.get("group0.block0.conv0")
    if len(set(groups)) != 1 or not groups[0] or first is None or first.dim() != 4:
        raise UserError(f"its three groups hold {'/'.join(map(str, groups))} blocks: not a WRN-d-k")
    width, rest = divmod(first.shape[0], 16)
    if rest or not width:
        raise UserError(f"its first group is {first.shape[0]} channels wide, not a multiple of 16")
    return f"wrn-{6 * groups[0] + 4}-{width}"


def check_claim(arch: str | None, held: str, source) -> str:
    """The architecture to import as: the one the checkpoint holds, which must be the one claimed."""
    if arch is not None and parse_arch(arch).name != parse_arch(held).name:
        raise UserError(f"{source} holds a {held}, not the {arch} that --arch names")
    return parse_arch(held).name


# -- renaming ------------------------------------------------------------------------------------------
XTERNALZ_PARTS = {"bn1": "bns.0", "conv1": "convs.0", "bn2": "bns.1", "conv2": "convs.1", "convShortcut": "shortcut"}
SZAGORUYKO_PARTS = {"bn0": "bns.0", "conv0": "convs.0", "bn1": "bns.1", "conv1": "convs.1", "convdim": "shortcut"}


def rename(key: str, layout: Layout, blocks_per_group: int) -> str:
    """wrn-deploy's name for the source's ``key`` (the key itself where the layout has no name for it,
    so it shows as unexpected)."""
    if not layout.cifar:
        return key  # timm's ResNet uses torchvision's names
    if layout.name == "xternalz":
        top = {"conv1.weight": "stem.weight"}
        block = re.fullmatch(r"block([123])\.layer\.(\d+)\.(\w+)\.(\w+)", key)
        group_base, parts, final = 1, XTERNALZ_PARTS, "bn1."
    else:
        top = {"conv0": "stem.weight"}
        block = re.fullmatch(r"group([012])\.block(\d+)\.(\w+?)(?:\.(\w+))?", key)
        group_base, parts, final = 0, SZAGORUYKO_PARTS, "bn."
    if key in top:
        return top[key]
    if key.startswith(final):
        return "bn." + key[len(final):]
    if key.startswith("fc."):
        return key
    if block:
        g, i, part, leaf = int(block.group(1)) - group_base, int(block.group(2)), block.group(3), block.group(4)
        if part in parts and i < blocks_per_group:
            return f"blocks.{g * blocks_per_group + i}.{parts[part]}.{leaf or 'weight'}"
    return key


def to_wrn(state: dict, layout: Layout, arch: str, expected: dict, source) -> dict:
    """The source's tensors under wrn-deploy's names, as float32, checked key for key and shape for
    shape against ``expected`` ({name: shape} of the model wrn-deploy builds)."""
    import torch

    spec = parse_arch(arch)
    renamed = {}
    for key, value in state.items():
        new = rename(key, layout, spec.blocks_per_group)
        if new not in expected:
            raise UserError(f"{source}: unexpected key {key!r} for a {arch} in {layout.what}'s layout"
                            + (" (a convolution bias: the paper's WRN has none)" if _conv_bias(key) else ""))
        renamed[new] = value
    for key in expected:
        # BatchNorm's update counter: szagoruyko's code keeps none, and inference never reads it.
        if key.endswith("num_batches_tracked") and key not in renamed:
            renamed[key] = torch.zeros((), dtype=torch.int64)
    missing = [k for k in expected if k not in renamed]
    if missing:
        raise UserError(f"{source}: the {arch} weight {missing[0]} is missing ({len(missing)} missing in all)")
    for key, value in renamed.items():
        if tuple(value.shape) != tuple(expected[key]):
            raise UserError(f"{source}: {key} has shape {tuple(value.shape)}; a {arch} with these classes has "
                            f"{tuple(expected[key])}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise UserError(f"{source}: {key} holds NaN or infinite values")
    return {k: (v.to(torch.int64) if k.endswith("num_batches_tracked") else v.to(torch.float32)).contiguous()
            for k, v in renamed.items()}


def _conv_bias(key: str) -> bool:
    return key.endswith(".bias") and re.search(r"conv|shortcut|downsample\.0", key) is not None
