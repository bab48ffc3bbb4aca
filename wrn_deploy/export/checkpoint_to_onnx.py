"""checkpoint -> prepared model -> ONNX (FP32 or FP16) -> checked, verified, reported; written
atomically, so a failure at any step leaves no .onnx behind."""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wrn_deploy.arch.normalize import Normalized
from wrn_deploy.card import FP16, FP32, Card, InputSpec, Step, versions, write_into_onnx
from wrn_deploy.checkpoint import model_from_checkpoint
from wrn_deploy.export.onnx_export import (
    DEFAULT_OPSET,
    INPUT,
    RawPixels,
    check_opset,
    export_onnx,
)
from wrn_deploy.export.prepare import prepare_for_export
from wrn_deploy.export.report import graph_report
from wrn_deploy.fileio import atomic_output, check_output, write_json
from wrn_deploy.limits import VERIFY_IMAGES
from wrn_deploy.onnx_check import check_model


@dataclass
class ExportOptions:
    fp16: bool = False
    fp16_io: bool = False
    raw_pixels: bool = False       # UINT8 0-255 input, cast and scaled inside the graph
    batch: int | None = None
    opset: int = DEFAULT_OPSET
    verify: bool = True
    data: str | None = None        # whose test images to verify on [default: the card's dataset]
    data_dir: str | None = None
    verify_images: int = VERIFY_IMAGES
    allow_other_data: bool = False
    skip_bad_images: bool = False


def onnx_card(card: Card, checkpoint: Path, output: Path, opts: ExportOptions) -> Card:
    step = Step("export", {k: v for k, v in asdict(opts).items() if k != "data_dir"},
                versions("onnx", "onnxruntime", "onnxscript"))
    io = "float16" if opts.fp16 and opts.fp16_io else "float32"
    spec = InputSpec(name=INPUT, dtype=io, batch=opts.batch, normalized_in_graph=True)
    if opts.raw_pixels:
        spec = InputSpec(name=INPUT, dtype="uint8", value_range=(0, 255), batch=opts.batch, normalized_in_graph=True)
    return card.derive("onnx", checkpoint, output, step, precision=FP16 if opts.fp16 else FP32, input=spec)


def report_path(output: Path) -> Path:
    return output.with_suffix(".report.json")


def export_checkpoint(checkpoint, output, opts: ExportOptions, force: bool = False) -> dict:
    from wrn_deploy.data import for_card

    checkpoint, output = Path(checkpoint), Path(output)
    check_opset(opts.opset)
    inputs = (checkpoint, checkpoint.with_suffix(".json"))
    for out in (output, report_path(output)):
        check_output(out, inputs, force)
    model, card = model_from_checkpoint(checkpoint)
    prepared, prep = prepare_for_export(model)
    net = Normalized(prepared, card.mean, card.std).eval()
    chosen = None
    if opts.verify:
        chosen = for_card(card, "test", opts.data, opts.data_dir, allow_other_data=opts.allow_other_data,
                          skip_bad=opts.skip_bad_images)
        chosen = chosen.first(opts.verify_images)
    new_card = onnx_card(card, checkpoint, output, opts)
    fp16_notes = None
    target = net
    if opts.fp16:
        from wrn_deploy.export.fp16 import to_fp16

        target, fp16_notes = to_fp16(net, opts.fp16_io)
    dtype = torch.float16 if opts.fp16_io else torch.float32
    if opts.raw_pixels:
        target, dtype = RawPixels(target).eval(), torch.uint8
    with atomic_output(output, replace=force) as tmp:
        export_onnx(target, tmp, card.input_size, opts.batch, opts.opset, dtype=dtype)
        write_into_onnx(tmp, new_card)
        check_model(tmp)
        figures = None
        if opts.verify:
            from wrn_deploy.export.verify import verify

            figures = verify(net, tmp, new_card.precision.compute, chosen.images(), chosen.labels)
            figures["data"] = f"{chosen.dataset} {chosen.split}"
        report = {"output": str(output), "precision": str(new_card.precision), "card": new_card.to_dict(),
                  "prepare": prep.to_dict(), "graph": graph_report(tmp), "fp16": fp16_notes,
                  "verification": figures}
    write_json(report_path(output), {**report, "output": output.name}, replace=force)
    return report
