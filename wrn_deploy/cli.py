"""The ``wrn-deploy`` command line: a click group with one thin module per command.

Heavy libraries (torch, onnx, onnxruntime, tensorrt) are imported inside the commands, so
``wrn-deploy --help`` is fast and works with none of the optional packages installed.
"""

import sys

import click

from wrn_deploy import __version__
from wrn_deploy.commands import build_cmd, eval_cmd, export_cmd, models_cmd, quantize_cmd, train_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wrn-deploy")
def cli():
    """Wide Residual Networks from training to production inference.

    \b
    train    -> checkpoint (safetensors + card)
    export   -> ONNX (dropout removed, BatchNorm folded; --fp16 for FP16)
    quantize -> INT8 Q/DQ ONNX (calibrated on training images, accuracy-guarded)
    build    -> TensorRT .plan (strongly typed; needs TensorRT and an NVIDIA GPU)
    eval     -> paired parity report against PyTorch FP32, with pass/fail gates
    """


cli.add_command(models_cmd.models)
cli.add_command(train_cmd.train)
cli.add_command(export_cmd.export)
cli.add_command(quantize_cmd.quantize)
cli.add_command(build_cmd.build)
cli.add_command(build_cmd.keygen)
cli.add_command(eval_cmd.eval_)


def main(argv=None) -> None:
    """Run the CLI; user mistakes become one line on stderr and a non-zero exit, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="wrn-deploy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("wrn-deploy: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"wrn-deploy: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
