"""The ``wrn-deploy`` command line: a click group with one thin module per command.

Heavy libraries (torch, onnx, onnxruntime, tensorrt) are imported inside the commands, so
``wrn-deploy --help`` is fast and works with none of the optional packages installed.
"""

import os
import re
import signal
import sys
import traceback

import click

from wrn_deploy import __version__
from wrn_deploy.commands import (bench_cmd, build_cmd, eval_cmd, export_cmd, import_cmd, models_cmd, pipeline_cmd,
                                 quantize_cmd, train_cmd, triton_cmd)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wrn-deploy")
def cli():
    """Wide Residual Networks from training to production inference.

    \b
    models   -> the model zoo: recipes, parameters, MACs, the paper's error
    train    -> checkpoint (safetensors + card)
    import   -> checkpoint from torchvision, timm or a PyTorch WRN port
    export   -> ONNX (dropout removed, BatchNorm folded; --fp16 for FP16)
    quantize -> INT8 Q/DQ ONNX (calibrated on training images, accuracy-guarded)
    build    -> TensorRT .plan (strongly typed; needs TensorRT and an NVIDIA GPU)
    keygen   -> Ed25519 key pair for build --sign and --verify-key
    eval     -> paired parity report against PyTorch FP32, with pass/fail gates
    triton   -> Triton model repository;  serve -> a real tritonserver on it
    bench    -> latency and throughput, locally and through Triton (HTTP, gRPC)
    pipeline -> all of the above for one model, cached, with one parity report
    report   -> redraw a pipeline's report.md and report.png from report.json

    Every option, with the commands that take it: docs/cli.md.
    WRN_DEPLOY_DEBUG=1 (or --debug first) shows the traceback of any error.
    """


cli.add_command(models_cmd.models)
cli.add_command(train_cmd.train)
cli.add_command(import_cmd.import_)
cli.add_command(export_cmd.export)
cli.add_command(quantize_cmd.quantize)
cli.add_command(build_cmd.build)
cli.add_command(build_cmd.keygen)
cli.add_command(eval_cmd.eval_)
cli.add_command(triton_cmd.triton)
cli.add_command(triton_cmd.serve)
cli.add_command(bench_cmd.bench)
cli.add_command(pipeline_cmd.pipeline)
cli.add_command(pipeline_cmd.report)


def main(argv=None) -> None:
    """Run the CLI; user mistakes become one line on stderr and a non-zero exit, never a traceback.

    Exit codes: 0 done, 1 a parity gate failed, 2 a user error, 3 an internal error, 130 interrupted.
    WRN_DEPLOY_DEBUG=1 (or --debug first) shows the traceback of any error, for bug reports.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # SIGTERM (timeout, docker stop, systemd) and SIGINT unwind like an exception, so every
    # temporary file is removed on the way out; `serve` installs its own handlers.
    debug = os.environ.get("WRN_DEPLOY_DEBUG", "") not in ("", "0") or argv[:1] == ["--debug"]
    if argv[:1] == ["--debug"]:
        argv = argv[1:]
    previous = {sig: signal.signal(sig, _interrupted) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _run(argv, debug)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(argv: list, debug: bool) -> None:
    try:
        rv = cli.main(args=argv, prog_name="wrn-deploy", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except Interrupted as e:
        _fail(f"stopped by {signal.Signals(e.code - 128).name}", e.code, debug)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("aborted", 130, debug)
    except click.ClickException as e:
        _fail(f"error: {e.format_message()}", e.exit_code, debug)
    except MemoryError:
        _fail("error: out of memory (a smaller --batch-size, model or dataset fits)", 2, debug)
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        _fail(f"error: {e.strerror or e}{where}", 2, debug)
    except ModuleNotFoundError as e:
        if e.name != "onnxruntime":
            _fail(f"internal error: {e} (WRN_DEPLOY_DEBUG=1 shows the traceback; please report it)", 3, debug)
        # ONNX Runtime comes with an extra (one of two: both would overwrite each other's files)
        _fail("error: ONNX Runtime is not installed: pip install 'wrn-deploy[cpu]' (or 'wrn-deploy[gpu]' on a "
              "machine with an NVIDIA GPU; never both)", 2, debug)
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if type(e).__name__ == "OutOfMemoryError" or "allocate memory" in str(e) or "not enough memory" in str(e):
            # torch.OutOfMemoryError (a GPU) or the CPU allocator's RuntimeError, without importing torch
            _fail("error: out of memory (a smaller --batch-size, model or dataset fits)", 2, debug)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        _fail(f"internal error: {type(e).__name__}: {first} (WRN_DEPLOY_DEBUG=1 shows the traceback; "
              "please report it)", 3, debug)
    sys.exit(rv if isinstance(rv, int) else 0)


class Interrupted(SystemExit):
    """A stop signal, raised where the program is so that cleanup runs."""


def _interrupted(signum, _frame):
    raise Interrupted(128 + signum)


def _fail(message: str, code: int, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    # One line, whatever a path contains: control characters are shown escaped, not obeyed.
    message = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], message)
    click.echo(f"wrn-deploy: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
