"""Check an exported ONNX file against PyTorch on real or synthetic images, in ONNX Runtime CPU.

FP32: the largest logit difference, relative to the logits' range, must be <= 1e-4 and every
top-1 must agree. FP16: top-1 must agree on >= 99% of images with PyTorch FP32 and with PyTorch's
own FP16 run of the same network.
"""

import copy

import numpy as np
import torch

from wrn_deploy.errors import UserError

FP32_MAX_REL_DIFF = 1e-4
FP16_MIN_AGREEMENT = 99.0


def ort_session(path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_ort(path, images: torch.Tensor, batch: int = 64) -> np.ndarray:
    """Logits of the ONNX file at ``path`` in ONNX Runtime CPU."""
    from wrn_deploy.runners.ort_runner import OrtRunner

    with OrtRunner(path) as runner:
        return runner.infer_all(images, batch)


@torch.no_grad()
def run_torch(net: torch.nn.Module, images: torch.Tensor, half: bool = False, batch: int = 64) -> np.ndarray:
    net = copy.deepcopy(net).eval()
    if half:
        net = net.half()
    out = [net(images[i:i + batch].half() if half else images[i:i + batch]).float()
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean() * 100)


def verify(net: torch.nn.Module, onnx_path, precision: str, images: torch.Tensor) -> dict:
    """Compare ONNX Runtime with PyTorch; return the figures or raise UserError naming them."""
    ref = run_torch(net, images)
    got = run_ort(onnx_path, images)
    diff = np.abs(got - ref)
    span = float(ref.max() - ref.min()) or 1.0
    fig = {"images": len(images), "precision": precision, "max_abs_diff": float(diff.max()),
           "mean_abs_diff": float(diff.mean()), "logit_range": span,
           "max_rel_diff": float(diff.max()) / span, "top1_agreement_vs_torch_fp32": agreement(got, ref)}
    if precision == "fp32":
        ok = fig["max_rel_diff"] <= FP32_MAX_REL_DIFF and fig["top1_agreement_vs_torch_fp32"] == 100.0
        gate = f"max |diff|/range <= {FP32_MAX_REL_DIFF:g} and 100% top-1 agreement"
    else:
        fig["top1_agreement_vs_torch_fp16"] = agreement(got, run_torch(net, images, half=True))
        ok = min(fig["top1_agreement_vs_torch_fp32"], fig["top1_agreement_vs_torch_fp16"]) >= FP16_MIN_AGREEMENT
        gate = f"top-1 agreement >= {FP16_MIN_AGREEMENT:g}% with PyTorch FP32 and FP16"
    fig["gate"], fig["passed"] = gate, bool(ok)
    if not ok:
        shown = {k: round(v, 6) if isinstance(v, float) else v for k, v in fig.items() if k not in ("gate",)}
        raise UserError(f"verification failed ({gate}): {shown}")
    return fig
