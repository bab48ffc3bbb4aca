"""Check an exported ONNX file against PyTorch on the model's test images, both through runners.

FP32: the largest logit difference, relative to the logits' range, must be <= limits.FP32_MAX_REL_DIFF
and every top-1 must agree (float rounding only). FP16: the same gate as ``eval`` applies to FP16
(top-1 agreement with PyTorch FP32 >= limits.FP16_MIN_AGREEMENT); agreement with PyTorch's own FP16
run of the network is reported beside it.
"""

import numpy as np
import torch

from wrn_deploy.errors import UserError
from wrn_deploy.limits import BATCH, FP32_MAX_REL_DIFF, Gates
from wrn_deploy.parity.compare import compare, run
from wrn_deploy.runners.ort_runner import OrtRunner
from wrn_deploy.runners.torch_runner import TorchRunner


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean() * 100)


def verify(net: torch.nn.Module, onnx_path, compute: str, images: torch.Tensor, labels) -> dict:
    """Compare ONNX Runtime with PyTorch; return the figures or raise UserError naming them."""
    ref = run(TorchRunner(net), images, BATCH)
    got = run(OrtRunner(onnx_path), images, BATCH)
    diff = np.abs(got.logits - ref.logits)
    span = float(ref.logits.max() - ref.logits.min()) or 1.0
    fig = {"images": len(images), "precision": compute, "max_abs_diff": float(diff.max()),
           "mean_abs_diff": float(diff.mean()), "logit_range": span, "max_rel_diff": float(diff.max()) / span,
           "top1_agreement_vs_torch_fp32": agreement(got.logits, ref.logits)}
    if compute == "fp32":
        ok = fig["max_rel_diff"] <= FP32_MAX_REL_DIFF and fig["top1_agreement_vs_torch_fp32"] == 100.0
        gate = f"max |diff|/range <= {FP32_MAX_REL_DIFF:g} and 100% top-1 agreement"
    else:
        half = run(TorchRunner(net, precision="fp16"), images, BATCH)
        fig["top1_agreement_vs_torch_fp16"] = agreement(got.logits, half.logits)
        (checked,) = compare(ref, got, labels, compute, Gates())["gates"]
        ok, gate = checked["passed"], checked["gate"] + " against PyTorch FP32"
    fig["gate"], fig["passed"] = gate, bool(ok)
    if not ok:
        shown = {k: round(v, 6) if isinstance(v, float) else v for k, v in fig.items() if k != "gate"}
        raise UserError(f"verification failed ({gate}): {shown}")
    return fig
