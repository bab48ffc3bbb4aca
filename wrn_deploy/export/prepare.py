"""Make a trained network inference-only before export, as a traced graph edit:

- every Dropout (and Identity) leaves the module tree and the graph;
- every BatchNorm fed directly by a Conv whose output nothing else reads folds into that Conv;
- every other BatchNorm (in a pre-activation WRN: the one opening a block on the residual stream,
  and the last one) becomes a per-channel ``x * scale + shift`` with the statistics folded in.

The result computes the same function as the eval-mode original, up to float32 rounding.
"""

from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


class ChannelAffine(nn.Module):
    """An eval-mode BatchNorm reduced to its cheapest form: one multiply and one add per channel."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias.detach() - bn.running_mean * scale
        self.register_buffer("scale", scale.view(1, -1, 1, 1).clone())
        self.register_buffer("shift", shift.view(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


@dataclass
class PrepareReport:
    folded: list = field(default_factory=list)      # [(conv, bn)]
    kept: list = field(default_factory=list)        # [(bn, reason)]
    dropout_removed: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"conv_bn_folded": [f"{c} <- {b}" for c, b in self.folded],
                "batchnorm_kept_as_affine": [{"name": b, "reason": r} for b, r in self.kept],
                "dropout_removed": self.dropout_removed}


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _name(node: fx.Node) -> str:
    return node.target if node.op == "call_module" else getattr(node.target, "__name__", node.name)


def _why_not_foldable(bn: fx.Node, prev: fx.Node, modules: dict) -> str:
    if prev.op == "call_module" and isinstance(modules.get(prev.target), nn.Conv2d):
        others = ", ".join(sorted(_name(u) for u in prev.users if u is not bn))
        return f"the output of {prev.target} also feeds {others} (identity shortcut)"
    return f"its input comes from {_name(prev)} (the residual stream), not from a convolution"


def prepare_for_export(model: nn.Module) -> tuple:
    """Return (inference-only GraphModule, PrepareReport). ``model`` itself is left untouched."""
    model = model.eval()
    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    report = PrepareReport()
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        mod = modules[node.target]
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            if isinstance(mod, nn.Dropout):
                report.dropout_removed.append(node.target)
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
        elif isinstance(mod, nn.BatchNorm2d):
            prev = node.args[0]
            conv = modules.get(prev.target) if prev.op == "call_module" else None
            if isinstance(conv, nn.Conv2d) and len(prev.users) == 1:
                _set_module(gm, prev.target, fuse_conv_bn_eval(conv, mod))
                node.replace_all_uses_with(prev)
                gm.graph.erase_node(node)
                report.folded.append((prev.target, node.target))
            else:
                report.kept.append((node.target, _why_not_foldable(node, prev, modules)))
                _set_module(gm, node.target, ChannelAffine(mod))
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm.eval(), report
