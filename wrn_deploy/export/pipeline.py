"""checkpoint -> prepared model -> ONNX (FP32 or FP16) -> checked, verified, reported; written
atomically, so a failure at any step leaves no .onnx behind."""

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from wrn_deploy.arch.normalize import Normalized
from wrn_deploy.card import versions
from wrn_deploy.checkpoint import model_from_checkpoint
from wrn_deploy.export.onnx_export import DEFAULT_OPSET, INPUT, OUTPUT, attach_metadata, check_model, export_onnx
from wrn_deploy.export.prepare import prepare_for_export
from wrn_deploy.export.report import graph_report
from wrn_deploy.fileio import atomic_output, sha256_file, write_json


@dataclass
class ExportOptions:
    fp16: bool = False
    fp16_io: bool = False
    batch: int | None = None
    opset: int = DEFAULT_OPSET
    verify: bool = True
    verify_dataset: str = "synthetic"
    data_dir: str | None = None
    verify_images: int = 256


def verification_images(opts: ExportOptions, card: dict) -> torch.Tensor:
    """The first N test images of the chosen dataset, resized check: they must fit the model."""
    from wrn_deploy.data import load_dataset
    from wrn_deploy.data.batches import batches
    from wrn_deploy.errors import UserError

    data = load_dataset(opts.verify_dataset, opts.data_dir, progress=False)
    x = torch.cat([b for b, _ in batches(data.test, 256, "cpu", size=card["input_size"], workers=0)])
    if x.shape[-1] != card["input_size"]:
        raise UserError(f"{opts.verify_dataset} images are {x.shape[-1]} px; the model takes "
                        f"{card['input_size']} px (choose another --verify-data)")
    return x[:opts.verify_images]


def onnx_card(card: dict, checkpoint: Path, opts: ExportOptions) -> dict:
    out = dict(card)
    out.update(precision="fp16" if opts.fp16 else "fp32", source_checkpoint=str(checkpoint.resolve()),
               source_checkpoint_sha256=sha256_file(checkpoint), trained_with=card.get("versions", {}),
               versions=versions("onnx", "onnxruntime", "onnxscript"),
               onnx={"input": INPUT, "output": OUTPUT, "layout": "NCHW RGB float in [0, 1]",
                     "batch": opts.batch or "dynamic", "opset": opts.opset,
                     "io_dtype": "float16" if opts.fp16 and opts.fp16_io else "float32"},
               exported=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return out


def export_checkpoint(checkpoint, output, opts: ExportOptions) -> dict:
    from wrn_deploy.errors import UserError
    from wrn_deploy.export.onnx_export import OPSETS

    checkpoint, output = Path(checkpoint), Path(output)
    if opts.opset not in OPSETS:
        raise UserError(f"opset {opts.opset} is not supported; choose one of {', '.join(map(str, OPSETS))}")
    if not output.parent.is_dir():
        raise UserError(f"output folder {output.parent} does not exist")
    model, card = model_from_checkpoint(checkpoint)
    prepared, prep = prepare_for_export(model)
    net = Normalized(prepared, card["mean"], card["std"]).eval()
    images = verification_images(opts, card) if opts.verify else None
    new_card = onnx_card(card, checkpoint, opts)
    fp16_notes = None
    target = net
    if opts.fp16:
        from wrn_deploy.export.fp16 import to_fp16

        target, fp16_notes = to_fp16(net, opts.fp16_io)
    with atomic_output(output) as tmp:
        export_onnx(target, tmp, card["input_size"], opts.batch, opts.opset,
                    dtype=torch.float16 if opts.fp16_io else torch.float32)
        attach_metadata(tmp, new_card)
        check_model(tmp)
        figures = None
        if opts.verify:
            from wrn_deploy.export.verify import verify

            figures = verify(net, tmp, new_card["precision"], images)
        report = {"output": str(output), "precision": new_card["precision"], "card": new_card,
                  "prepare": prep.to_dict(), "graph": graph_report(tmp), "fp16": fp16_notes,
                  "verification": figures}
    write_json(output.with_suffix(".report.json"), report)
    return report
