"""``wrn-deploy bench``: latency and throughput, locally and through a real Triton server."""

import click

from wrn_deploy.commands.options import data_options


@click.command()
@click.argument("artifact", type=click.Path(dir_okay=False))
@data_options("the model's")
@click.option("--images", type=click.IntRange(8), default=256, show_default=True, help="Real test images to cycle.")
@click.option("--batch", type=click.IntRange(1, 256), default=1, show_default=True, help="Images per request.")
@click.option("--requests", type=click.IntRange(10), default=200, show_default=True, help="Timed requests per row.")
@click.option("--concurrency", default="1,4,8,16", show_default=True, help="Triton client counts to measure.")
@click.option("--triton/--no-triton", default=True, show_default=True,
              help="Also serve the artifact (Python backend) in a local tritonserver and measure HTTP and gRPC.")
@click.option("--instances", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Triton model instances.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Inference threads of the local runner (Triton's instances use one each).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the table (Markdown) and JSON here.")
@click.option("--force", is_flag=True, help="Replace an existing --output.")
def bench(artifact, data, data_dir, skip_bad_images, images, batch, requests, concurrency, triton, instances, threads,
          output, force):
    """Measure ARTIFACT: p50/p90/p99 latency and throughput after warm-up, on real images."""
    import tempfile
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
    if output:
        for suffix in ("", ".json"):
            check_output(f"{output}{suffix}", (artifact,), force)
    card = read_card(artifact)
    x = for_card(card, "test", data, data_dir, skip_bad=skip_bad_images).first(images).images().numpy()
    rows = [B.bench_local(runner_for(artifact, threads=threads), x, batch, requests).to_dict()]
    if triton:
        from wrn_deploy.triton.config import ServeOptions
        from wrn_deploy.triton.repository import write_repository
        from wrn_deploy.triton.server import Server, free_port

        with tempfile.TemporaryDirectory(prefix="wrn-deploy-bench-") as tmp:
            write_repository(artifact, Path(tmp), ServeOptions("m", "python", max_batch=max(batch, 32),
                                                               instances=instances), check_load=False)
            with Server(Path(tmp), http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                        log=Path(tmp) / "server.log") as server:
                for protocol, url in (("http", server.http), ("grpc", server.grpc)):
                    for c in levels:
                        rows.append(B.bench_triton(protocol, url, "m", x, batch, requests, c).to_dict())
    title = f"{card.arch} {card.precision} ({Path(artifact).name}), batch {batch}"
    note = f"Machine: {B.machine()}. {len(x)} real {card.dataset.get('name', '')} test images, {requests} timed " \
           f"requests per row after {B.WARMUP} warm-up requests per client; Triton: Python backend, " \
           f"{instances} CPU instance(s), dynamic batching."
    table = B.markdown(title, rows, note)
    click.echo(table)
    if output:
        write_text(output, table)
        write_json(f"{output}.json", {"artifact": str(artifact), "batch": batch, "rows": rows, "note": note})
