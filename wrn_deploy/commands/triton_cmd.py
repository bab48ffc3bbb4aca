"""``wrn-deploy triton`` (write a model repository) and ``wrn-deploy serve`` (run tritonserver)."""

import click

from wrn_deploy.commands.options import (allow_unverified_option, force_option, instances_option, output_option,
                                         verify_key_option)


@click.command()
@click.argument("artifact", type=click.Path(dir_okay=False))
@output_option("The model repository folder (made, or added to).", name="repo", required=True, folder=True,
               old=["--repo"])
@click.option("--name", help="Model name in the repository [default: ARCH-PRECISION].")
@click.option("--backend", type=click.Choice(["native", "openvino", "python"]), default="native", show_default=True,
              help="native: tensorrt for a plan, onnxruntime for ONNX; openvino: Triton's OpenVINO backend for ONNX "
                   "(CPU); python: wrn-deploy's runner for any artifact.")
@click.option("--max-batch", type=click.IntRange(1, 4096), default=32, show_default=True)
@instances_option()
@click.option("--kind", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True, help="Instance kind.")
@click.option("--queue-delay-us", type=click.IntRange(0, 10_000_000), default=500, show_default=True,
              help="How long dynamic batching waits to fill a batch.")
@click.option("--trt-accelerator", is_flag=True, help="ONNX on a GPU: use ONNX Runtime's TensorRT accelerator.")
@click.option("--raw-pixels", is_flag=True,
              help="Serve an ONNX file behind a UINT8 0-255 input, cast and scaled inside the graph (for clients that "
                   "send an image's bytes as they are, like Triton's stock image client).")
@click.option("--check-load/--no-check-load", default=True, show_default=True,
              help="Load the model in a real tritonserver before keeping it (where one is installed).")
@verify_key_option()
@allow_unverified_option("Copy a TensorRT plan whose size or sha256 does not match its manifest.")
@force_option(help="Replace the model if the repository already has it.")
def triton(artifact, repo, name, backend, max_batch, instances, kind, queue_delay_us, trt_accelerator, raw_pixels,
           check_load, verify_key, allow_unverified, force):
    """Write a Triton Inference Server model repository for ARTIFACT (checkpoint, ONNX or plan).

    \b
    The config is checked against Triton's own schema and against the artifact (input and output
    names, dims, dtypes, batch sizes, labels), and, where a tritonserver is installed and has the
    backend, by loading it for real. A plan is verified (manifest, and signature under the trust
    policy) before it is copied; every file is recorded with its sha256 for `serve`.
    """
    from wrn_deploy.errors import UserError
    from wrn_deploy.triton.config import ServeOptions
    from wrn_deploy.triton.repository import write_repository

    if trt_accelerator and (kind != "gpu" or backend != "native"):
        raise UserError("--trt-accelerator applies to a native ONNX model on --kind gpu")
    if name is not None and not name.strip():
        raise UserError("--name is empty; give a model name, or leave --name out for ARCH-PRECISION")
    name = name or _default_name(artifact, verify_key, allow_unverified)
    opts = ServeOptions(name=name, backend=backend, max_batch=max_batch, instances=instances, kind=kind,
                        queue_delay_us=queue_delay_us, trt_accelerator=trt_accelerator)
    done = write_repository(artifact, repo, opts, force=force, check_load=check_load, verify_key=verify_key,
                            allow_unverified=allow_unverified, raw_pixels=raw_pixels)
    click.echo(f"wrote {done.folder} ({done.backend} backend, max batch {max_batch}, {instances} {kind} "
               f"instance(s)); {done.loaded}")


def _default_name(artifact, verify_key, allow_unverified) -> str:
    """ARCH-PRECISION from the card, read only after a plan passed the trust policy."""
    from wrn_deploy.card import artifact_kind, read_card
    from wrn_deploy.plan_trust import Trust

    if artifact_kind(artifact) == "plan":
        Trust(artifact, verify_key, allow_unverified, warn=lambda _: None).preflight()
    card = read_card(artifact)
    return f"{card.arch}-{str(card.precision).replace('+', '-')}"


@click.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 exposes it).")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=8002, show_default=True)
@click.option("--log", type=click.Path(dir_okay=False), help="Write the server's log here [default: discarded].")
@verify_key_option()
@allow_unverified_option("Serve a repository with files wrn-deploy did not write (or that changed since), a foreign "
                         "Python-backend model.py, or a plan that fails its manifest check: runs that code.")
def serve(source, host, http_port, grpc_port, metrics_port, log, verify_key, allow_unverified):
    """Serve a model repository (or one artifact, through the Python backend) with tritonserver.

    A repository must be as `wrn-deploy triton` wrote it: every file recorded with its sha256, the
    Python backend's model.py wrn-deploy's own, plans verified. Runs until Ctrl-C or SIGTERM, then
    stops the server; exits non-zero if the server dies first.
    """
    import signal
    import sys
    import tempfile
    import time
    from pathlib import Path

    from wrn_deploy.errors import UserError
    from wrn_deploy.triton.files import check_repository, private_copy
    from wrn_deploy.triton.server import Server

    if len({http_port, grpc_port, metrics_port}) != 3:
        raise UserError("--http-port, --grpc-port and --metrics-port must differ")
    if Path(source).is_dir():  # checked as the user's folder, so that errors name its files
        check_repository(source, verify_key, allow_unverified, warn=lambda m: click.echo(m, err=True))
    with tempfile.TemporaryDirectory(prefix="wrn-deploy-serve-") as scratch:
        repo = Path(source)
        if repo.is_dir():  # the server reads a private copy, checked again: nothing can change in between
            repo = private_copy(repo, Path(scratch) / "repo")
            try:
                check_repository(repo, verify_key, allow_unverified, warn=lambda m: None)
            except UserError:
                raise UserError(f"{source} changed while serve checked it; run serve again") from None
        elif repo.is_file():
            from wrn_deploy.triton.config import ServeOptions
            from wrn_deploy.triton.repository import write_repository

            name = _default_name(repo, verify_key, allow_unverified)
            write_repository(repo, Path(scratch), ServeOptions(name, "python"), check_load=False,
                             verify_key=verify_key, allow_unverified=allow_unverified)
            repo = Path(scratch)
        server = Server(repo, host, http_port, grpc_port, metrics_port, log=Path(log) if log else None)
        stopping = []

        def stop(signum, _frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            server.start()
            click.echo(f"serving {source}: HTTP http://{server.http}  gRPC {server.grpc}  "
                       f"metrics http://{host}:{metrics_port}/metrics  (Ctrl-C stops)", err=False)
            sys.stdout.flush()
            while not stopping and server.process.poll() is None:
                time.sleep(0.2)
        finally:
            code = server.process.poll() if server.process else None
            server.stop()
        if not stopping:
            raise UserError(f"tritonserver stopped by itself (exit code {code})"
                            + (f"; its log: {log}" if log else "; --log FILE keeps its log"))
    click.echo("stopped")
