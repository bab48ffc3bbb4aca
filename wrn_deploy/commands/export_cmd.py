"""``wrn-deploy export``: checkpoint -> ONNX for TensorRT 10/11 (strongly typed) and ONNX Runtime."""

import click

from wrn_deploy import limits
from wrn_deploy.commands.options import (allow_other_data_option, data_options, force_option, images_option, option,
                                         output_option)


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@output_option("The .onnx to write.", required=True)
@click.option("--fp16", is_flag=True, help="FP16 weights and compute (float32 inputs/outputs).")
@click.option("--fp16-io", is_flag=True, help="With --fp16: FP16 inputs and outputs too.")
@click.option("--raw-pixels", is_flag=True,
              help="Take UINT8 pixels 0-255 (cast and scaled inside the graph) instead of floats in [0, 1].")
@option("--static-batch", "batch", old=["--batch"], type=click.IntRange(1),
        help="Fix the graph's batch dimension to N [default: dynamic].")
@click.option("--opset", type=int, default=18, show_default=True,
              help="ONNX opset (18-20); all parse in every TensorRT 10.x and 11.x.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare ONNX Runtime CPU with PyTorch on test images before keeping the file.")
@data_options("the checkpoint's")
@images_option("Test images to verify on (the first N).", name="verify_images", default=limits.VERIFY_IMAGES,
               minimum=8, old=["--verify-images"])
@allow_other_data_option("Verify on data other than the checkpoint's (same classes).")
@force_option
def export(checkpoint, output, fp16, fp16_io, raw_pixels, batch, opset, verify, data, data_dir, skip_bad_images,
           verify_images, allow_other_data, force):
    """Export CHECKPOINT to ONNX with dropout removed and BatchNorm folded.

    \b
    The graph takes `images` (N,3,H,W RGB floats in [0, 1], or with --raw-pixels UINT8 0-255;
    normalisation is inside, and the card says so) and returns `logits`. The card rides in the
    file's metadata; OUTPUT.report.json lists what was folded, the operators and the verification
    figures.
    """
    from wrn_deploy.errors import UserError
    from wrn_deploy.export.checkpoint_to_onnx import ExportOptions, export_checkpoint
    from wrn_deploy.export.report import format_report

    if fp16_io and not fp16:
        raise UserError("--fp16-io needs --fp16")
    if raw_pixels and fp16_io:
        raise UserError("--raw-pixels and --fp16-io both choose the input's type; pass one")
    opts = ExportOptions(fp16=fp16, fp16_io=fp16_io, raw_pixels=raw_pixels, batch=batch, opset=opset, verify=verify,
                         data=data, data_dir=data_dir, verify_images=verify_images, allow_other_data=allow_other_data,
                         skip_bad_images=skip_bad_images)
    click.echo(format_report(export_checkpoint(checkpoint, output, opts, force)))
