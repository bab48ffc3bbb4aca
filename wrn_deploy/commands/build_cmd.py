"""``wrn-deploy build``: ONNX -> TensorRT plan (strongly typed) with a manifest, optionally signed."""

import click

from wrn_deploy.commands.options import force_option, output_option


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@output_option("The .plan to write.", required=True)
@click.option("--min-batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--opt-batch", type=click.IntRange(1), default=32, show_default=True)
@click.option("--max-batch", type=click.IntRange(1), default=256, show_default=True)
@click.option("--workspace", type=click.IntRange(16), default=1024, show_default=True, help="Workspace limit, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default="timing.cache", show_default=True,
              help="Reused across builds on the same GPU and TensorRT version.")
@click.option("--version-compatible", is_flag=True,
              help="Plan runs on later TensorRT releases and on the lean runtime (tensorrt-lean on PyPI) (may be "
                   "slower).")
@click.option("--hw-compat", type=click.Choice(["none", "ampere_plus", "same_compute_capability"]),
              default="none", show_default=True, help="Hardware compatibility level.")
@click.option("--opt-level", type=click.IntRange(0, 5), help="Builder optimisation level [TensorRT default: 3].")
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False), help="Ed25519 private key (PEM) to sign with.")
@force_option(help="Replace an existing plan (never an input).")
def build(model, output, min_batch, opt_batch, max_batch, workspace, timing_cache, version_compatible, hw_compat,
          opt_level, sign_key, force):
    """Build a TensorRT engine from an ONNX file made by export or quantize.

    \b
    Precision comes from the ONNX file (FP32, FP16, or INT8 Q/DQ); no precision flag is set, so the
    same command works on TensorRT 10.x and 11.x. Writes OUTPUT, OUTPUT.json (the manifest: TensorRT
    version, GPU, build options, hashes, card) and, with --sign, OUTPUT.sig.
    """
    from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine

    opts = BuildOptions(min_batch, opt_batch, max_batch, workspace, timing_cache, version_compatible, hw_compat,
                        opt_level)
    man = build_engine(model, output, opts, sign_key, force)
    click.echo(f"wrote {output} ({man['plan_bytes'] / 1e6:.1f} MB, {man['card']['precision']}, TensorRT "
               f"{man['tensorrt_version']} on {man['gpu']}, batch {min_batch}-{max_batch}, "
               f"{man['build_seconds']} s)")


@click.command()
@click.argument("private_key", type=click.Path(dir_okay=False))
@click.argument("public_key", type=click.Path(dir_okay=False))
def keygen(private_key, public_key):
    """Make an Ed25519 key pair for build --sign / --verify-key."""
    from wrn_deploy.plan_trust import generate_keypair

    generate_keypair(private_key, public_key)
    click.echo(f"wrote {private_key} (keep it secret) and {public_key}")
