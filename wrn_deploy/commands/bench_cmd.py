"""``wrn-deploy bench``: latency and throughput, locally and through a real Triton server."""

import click

from wrn_deploy.commands.options import (
    allow_unverified_option,
    batch_size_option,
    check_runtime,
    data_options,
    force_option,
    images_option,
    instances_option,
    output_option,
    requests_option,
    runtime_options,
    verify_key_option,
)


@click.command()
@click.argument("artifact", type=click.Path(dir_okay=False))
@data_options("the model's")
@images_option("Real test images to cycle (the first N).", default=256, minimum=8)
@batch_size_option("Images per request (the batch size timed).", name="batch", default=1, maximum=256, old=["--batch"])
@requests_option("Timed requests per row.")
@click.option("--concurrency", default="1,4,8,16", show_default=True, help="Triton client counts to measure.")
@click.option("--rounds", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Interleaved rounds: each times a share of every row, so load changes hit all rows alike.")
@click.option("--triton/--no-triton", default=True, show_default=True,
              help="Also serve the artifact (Python backend) in a local tritonserver and measure HTTP and gRPC.")
@instances_option()
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Inference threads of the local runner (Triton's instances use one each).")
@runtime_options("an ONNX ARTIFACT locally")
@verify_key_option()
@allow_unverified_option()
@output_option("Also write the table (Markdown) here, and its JSON to OUTPUT.json.")
@force_option(help="Replace an existing --output.")
def bench(artifact, data, data_dir, skip_bad_images, images, batch, requests, concurrency, rounds, triton, instances,
          threads, runtime, precision_hint, verify_key, allow_unverified, output, force):
    """Measure ARTIFACT: p50/p90/p99 latency and throughput after warm-up, on real images."""
    from pathlib import Path

    from wrn_deploy import bench as B
    from wrn_deploy.card import read_card
    from wrn_deploy.data import for_card
    from wrn_deploy.errors import UserError
    from wrn_deploy.fileio import check_output, write_json, write_text
    from wrn_deploy.runners import runner_for

    try:
        levels = sorted({int(c) for c in concurrency.split(",")})
    except ValueError:
        raise UserError(f"--concurrency {concurrency!r}: give client counts like 1,4,8,16") from None
    if not levels or levels[0] < 1 or levels[-1] > 256:
        raise UserError("--concurrency: client counts between 1 and 256")
    if rounds > requests:
        raise UserError(f"--rounds {rounds} is more than --requests {requests}: each round times a share of them")
    if output:
        for suffix in ("", ".json"):
            check_output(f"{output}{suffix}", (artifact,), force)
    check_runtime(runtime, precision_hint)
    if runtime == "openvino" and triton:
        raise UserError("--runtime openvino times the local runner only (the Triton rows serve the file with "
                        "wrn-deploy's Python backend): pass --no-triton")
    local = runner_for(artifact, threads=threads, verify_key=verify_key, allow_unverified=allow_unverified,
                       runtime=runtime, precision_hint=precision_hint)
    local.check()  # the trust policy before any image loads
    card = read_card(artifact)
    x = for_card(card, "test", data, data_dir, skip_bad=skip_bad_images).first(images).images()
    if triton:
        from wrn_deploy.triton.config import ServeOptions
        from wrn_deploy.triton.server import served_artifact

        opts = ServeOptions("m", "python", max_batch=max(batch, 32), instances=instances)
        with served_artifact(artifact, opts, verify_key=verify_key, allow_unverified=allow_unverified) as server:
            urls = {"http": server.http, "grpc": server.grpc}
            def beside(protocol, clients, share):  # perf_analyzer after each Triton row, where installed
                return B.perf_analyzer(protocol, urls[protocol], "m", batch, clients, share)

            rows = B.measure(local, x, batch, requests, rounds, urls, "m", tuple(levels), beside)
    else:
        rows = B.measure(local, x, batch, requests, rounds)
    ran = f", {local.name} (computed in {local.ran_precision})" if runtime == "openvino" else ""
    title = f"{card.arch} {card.precision} ({Path(artifact).name}){ran}, batch {batch}"
    pa = any(r.get("perf_analyzer") for r in rows)
    note = f"Machine: {B.machine()}. {len(x)} real {card.dataset.get('name', '')} test images, {requests} timed " \
           f"requests per row in {rounds} interleaved rounds, after {B.WARMUP} warm-up requests per client; Triton: " \
           f"Python backend, {instances} CPU instance(s), dynamic batching; each client a separate process" \
           + ("; perf_analyzer: the same model, protocol, batch and clients, right after each row in every "
              "round (mean images/s, median latency)." if pa else
              "; perf_analyzer: not installed here." if triton else ".")
    table = B.markdown(title, rows, note)
    click.echo(table)
    if output:
        write_text(output, table)
        write_json(f"{output}.json", {"artifact": str(artifact), "batch": batch, "rounds": rounds, "rows": rows,
                                      "note": note})
