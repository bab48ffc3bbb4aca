"""What an exported graph contains: operator histogram, Dropout and Conv->BatchNormalization
counts (both must be 0), parameters and file size."""

from collections import Counter
from pathlib import Path

import numpy as np


def graph_report(path) -> dict:
    import onnx

    model = onnx.load(str(path))
    nodes = model.graph.node
    producer = {o: n for n in nodes for o in n.output}
    bn_after_conv = sum(1 for n in nodes if n.op_type == "BatchNormalization"
                        and n.input[0] in producer and producer[n.input[0]].op_type == "Conv")
    params = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    return {"operators": dict(sorted(Counter(n.op_type for n in nodes).items())),
            "dropout_nodes": sum(1 for n in nodes if n.op_type == "Dropout"),
            "batchnorm_after_conv": bn_after_conv,
            "parameters": params,
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
            "file_bytes": Path(path).stat().st_size}


def format_report(rep: dict) -> str:
    g, p, v = rep["graph"], rep["prepare"], rep.get("verification")
    lines = [
        f"wrote {rep['output']} ({rep['precision']}, opset {g['opset']}, "
        f"{g['file_bytes'] / 1e6:.2f} MB, {g['parameters'] / 1e6:.3f}M parameters)",
        f"  Conv+BN folded: {len(p['conv_bn_folded'])}; BatchNorm kept as scale+shift: "
        f"{len(p['batchnorm_kept_as_affine'])}; Dropout removed: {len(p['dropout_removed'])}",
        f"  graph: Dropout nodes {g['dropout_nodes']}, BatchNormalization after Conv {g['batchnorm_after_conv']}",
        "  operators: " + ", ".join(f"{k} {n}" for k, n in g["operators"].items()),
    ]
    reasons = Counter(k["reason"].split(" (")[0] if "residual" in k["reason"] else k["reason"]
                      for k in p["batchnorm_kept_as_affine"])
    for reason, n in reasons.items():
        lines.append(f"  kept {n}x: {reason}")
    if v:
        lines.append(f"  verified on {v['images']} {v.get('data', '')} images in ONNX Runtime CPU: "
                     f"max |diff| {v['max_abs_diff']:.3g} ({v['max_rel_diff']:.2g} of the logit range), top-1 agreement "
                     f"{v['top1_agreement_vs_torch_fp32']:.2f}% vs PyTorch FP32"
                     + (f", {v['top1_agreement_vs_torch_fp16']:.2f}% vs PyTorch FP16"
                        if "top1_agreement_vs_torch_fp16" in v else "") + f"; {v['gate']} -> passed")
    else:
        lines.append("  verification skipped (--no-verify)")
    return "\n".join(lines)
