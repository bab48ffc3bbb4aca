"""FP16 export: the network's weights and arithmetic in FP16, the input normalisation in float32.

The FP16 graph comes straight from PyTorch (the prepared network cast with ``.half()``), so every
Conv/Gemm/Add carries FP16 tensors and TensorRT 11 builds it as FP16 with no builder flag. A weight
FP16 cannot hold (|w| > 65504) stops the export instead of being clamped.
"""

import torch
from torch import nn

from wrn_deploy.arch.normalize import Normalized
from wrn_deploy.errors import UserError
from wrn_deploy.limits import FP16_MAX, FP16_TINY


def weight_range_report(net: nn.Module) -> dict:
    """How many weights fall outside what FP16 represents."""
    over, under, total = [], 0, 0
    for name, t in list(net.named_parameters()) + list(net.named_buffers()):
        if not t.is_floating_point():
            continue
        total += t.numel()
        if t.abs().max() > FP16_MAX:
            over.append(name)
        under += int(((t != 0) & (t.abs() < FP16_TINY)).sum())
    return {"weights": total, "over_fp16_max": over, "flushed_below_fp16_subnormal": under}


class HalfPrecision(nn.Module):
    """float32 (or FP16) images -> float32 normalisation -> FP16 network -> float32 (or FP16) logits."""

    def __init__(self, net: Normalized, fp16_io: bool = False):
        super().__init__()
        self.register_buffer("mean", net.mean.clone())
        self.register_buffer("std", net.std.clone())
        self.net = net.net.half()
        self.fp16_io = fp16_io

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(((x.float() - self.mean) / self.std).half())
        return logits if self.fp16_io else logits.float()


def to_fp16(net: Normalized, fp16_io: bool = False) -> tuple:
    """Return (HalfPrecision module, notes); ``net`` is not modified."""
    import copy

    ranges = weight_range_report(net.net)
    if ranges["over_fp16_max"]:
        raise UserError(f"weights exceed FP16's largest value 65504 in {', '.join(ranges['over_fp16_max'][:5])}; "
                        "an FP16 export would clamp them")
    half = HalfPrecision(copy.deepcopy(net), fp16_io).eval()
    return half, {"normalisation": "float32", "io": "float16" if fp16_io else "float32", **ranges}
