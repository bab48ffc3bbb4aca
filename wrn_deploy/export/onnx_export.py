"""PyTorch -> ONNX: one self-contained file, input ``images`` (RGB in [0, 1], NCHW, normalisation
inside the graph), output ``logits``, dynamic batch unless a fixed one is asked for."""

import warnings
from pathlib import Path

import torch

from wrn_deploy.errors import UserError

INPUT, OUTPUT = "images", "logits"
# torch's exporter writes opset 18 natively (lower ones go through a converter that fails on
# ReduceMean). TensorRT 10.0 parses opsets 9-20 (onnx-tensorrt docs/operators.md), 11.x up to 25.
OPSETS = (18, 19, 20)
DEFAULT_OPSET = 18


def check_opset(opset: int) -> None:
    if opset not in OPSETS:
        raise UserError(f"opset {opset} is not supported; choose one of {', '.join(map(str, OPSETS))}")


class RawPixels(torch.nn.Module):
    """The raw-pixel input: UINT8 values 0-255, cast and scaled to [0, 1] inside the graph, so a
    client that sends an image's bytes as they are (Triton's stock image client with no scaling)
    gets the same answer as one that sends floats in [0, 1] to the default graph."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 255.0)


def export_onnx(net: torch.nn.Module, path: Path, input_size: int, batch: int | None, opset: int,
                dtype: torch.dtype = torch.float32) -> None:
    """Write ``net`` (a Normalized, prepared model in eval mode) to ``path`` as one ONNX file."""
    check_opset(opset)
    from torch.export import Dim

    x = (torch.rand(batch or 2, 3, input_size, input_size) * (255 if dtype == torch.uint8 else 1)).to(dtype)
    dynamic = None if batch else {"x": {0: Dim("batch", min=1, max=4096)}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes about skipped torchvision ops
        program = torch.onnx.export(net, (x,), input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes=dynamic, opset_version=opset, dynamo=True,
                                    external_data=False, optimize=True, verbose=False)
    # torch 2.9+ writes weights to a side file by default; keep them inside (< 2 GB for any WRN).
    program.save(str(path), external_data=False)
