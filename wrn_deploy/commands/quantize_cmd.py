"""``wrn-deploy quantize``: FP32 ONNX -> INT8 Q/DQ ONNX, calibrated on training images, guarded."""

import click

from wrn_deploy import limits
from wrn_deploy.commands.options import (Finite, allow_other_data_option, calib_method_option, calib_size_option,
                                         data_options,
                                         force_option, max_int8_drop_option, output_option, progress_option)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@output_option("The INT8 .onnx to write.", required=True)
@data_options("the model's")
@calib_size_option("Calibration images.")
@click.option("--calib-split", type=click.Choice(["val", "train"]), default="val", show_default=True,
              help="Part of the TRAINING split: the held-out validation part, or the rest.")
@click.option("--calib-seed", type=int, default=0, show_default=True, help="Seeds the image sample.")
@click.option("--calib-dir", type=click.Path(file_okay=False), default="calibration", show_default=True,
              help="Where manifests and cached ranges live.")
@calib_method_option("--method", "method", f"How activation ranges are chosen [default: {limits.CALIB_METHOD}; "
                    "entropy with --quantizer modelopt, which has no percentile methods].")
@click.option("--percentile", type=Finite(90, 100), default=limits.CALIB_PERCENTILE, show_default=True)
@click.option("--target", type=click.Choice(["tensorrt", "cpu", "openvino"]), default="tensorrt", show_default=True,
              help="tensorrt: symmetric S8S8 Q/DQ where --placement says; cpu: U8S8 (weights within +-64), "
                   "every op (fastest in ORT); openvino: symmetric U8/S8 where NNCF places them (fastest in OpenVINO).")
@click.option("--rest", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True,
              help="tensorrt target: precision of the unquantized remainder.")
@click.option("--placement", type=click.Choice(["fusion", "conv"]), default="fusion", show_default=True,
              help="tensorrt target: fusion = Conv inputs and the residual input of each residual Add (TensorRT "
                   "fuses the Add into the INT8 convolution; NVIDIA ModelOpt's placement), classifier float; "
                   "conv = Conv and Gemm inputs only.")
@click.option("--quantize-classifier", is_flag=True, help="fusion placement: quantize the final Gemm too.")
@click.option("--quantizer", type=click.Choice(["wrn-deploy", "modelopt"]), default="wrn-deploy", show_default=True,
              help="Who writes the Q/DQ graph: wrn-deploy (ONNX Runtime's tools) or NVIDIA ModelOpt's ONNX PTQ "
                   "(the 'modelopt' extra, or a python that has it in WRN_DEPLOY_MODELOPT_PYTHON).")
@max_int8_drop_option("Largest allowed top-1 drop (points) against FP32 on held-out training images: the "
                      "guard leaves layers in float until it holds.", name="max_drop", old=["--max-drop"])
@click.option("--no-guard", is_flag=True, help="No accuracy guard: no held-out scoring, no layer kept float (eval checks the model later).")
@allow_other_data_option("Calibrate on data other than the model's (same classes).")
@force_option
@progress_option
def quantize(model, output, data, data_dir, skip_bad_images, calib_size, calib_split, calib_seed, calib_dir, method,
             percentile, target, rest, placement, quantize_classifier, quantizer, max_drop, no_guard,
             allow_other_data, force, progress):
    """Quantize an FP32 MODEL to explicit INT8 (QuantizeLinear/DequantizeLinear) ONNX.

    \b
    TensorRT 10/11 build the result strongly typed, with no INT8 flag and no calibrator. The
    calibration images (default: 512 from the held-out part of the training split) are listed in
    CALIB_DIR/<folder>/manifest.json beside their cached ranges, and inside the model's card.
    """
    from wrn_deploy.quant.onnx_to_int8 import QuantOptions, format_report, quantize_onnx
    from wrn_deploy.quant.qdq import QuantSpec

    if method is None:
        method = "entropy" if quantizer == "modelopt" else limits.CALIB_METHOD
    if given_option("percentile") and method != "percentile":
        # Before 0.6 the default method was the percentile one, which --percentile alone adjusted.
        from wrn_deploy.errors import UserError

        if quantizer == "modelopt":
            raise UserError("--percentile sets the percentile method's cut, and --quantizer modelopt has no "
                            "percentile method")
        raise UserError(f"--percentile sets the percentile method's cut; the method here is {method}: "
                        "pass --method percentile with it")
    if target != "tensorrt" and rest == "fp16" and given_option("rest"):
        from wrn_deploy.errors import UserError

        raise UserError(f"--rest fp16 applies to --target tensorrt; the {target} target leaves what is not INT8 in FP32")
    spec = QuantSpec(target, method, percentile, rest, placement, quantize_classifier, quantizer)
    opts = QuantOptions(spec=spec, data=data, data_dir=data_dir,
                        calib_size=calib_size, seed=calib_seed, split=calib_split, calib_dir=calib_dir,
                        max_drop=None if no_guard else max_drop, allow_other_data=allow_other_data,
                        skip_bad_images=skip_bad_images,
                        progress=progress)
    click.echo(format_report(quantize_onnx(model, output, opts, force)))


def given_option(name: str) -> bool:
    """Whether the user gave the option ``name`` (not its default)."""
    return click.get_current_context().get_parameter_source(name) != click.core.ParameterSource.DEFAULT
