"""``wrn-deploy pipeline`` (data to deployable artifacts and the parity report) and ``wrn-deploy report``
(redraw reports from their JSON)."""

import click

from wrn_deploy import limits
from wrn_deploy.commands.options import (calib_method_option, calib_size_option, data_options, device_option, images_option,
                                         max_int8_drop_option, min_int8_agreement_option, output_option,
                                         progress_option, requests_option)


@click.command()
@click.option("--arch", help="Architecture to train [default: wrn-16-1; with --checkpoint: its own].")
@data_options("synthetic; with --checkpoint: the checkpoint's")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Start from this trained checkpoint instead of training.")
@output_option("Pipeline folder [default: runs/ARCH-DATA-pipeline]; a rerun reuses what is still valid.", name="out",
               folder=True, old=["--out"])
@click.option("--epochs", type=click.IntRange(1), help="Training epochs [default: the recipe's].")
@click.option("--seed", type=int, default=0, show_default=True, help="Training and calibration seed.")
@device_option(help="Where PyTorch runs (training, the reference); on a CUDA device ONNX Runtime uses its CUDA "
                    "provider where onnxruntime-gpu is installed.")
@images_option("Score only the first N test images [default: all].", name="eval_images", old=["--eval-images"])
@calib_size_option("INT8 calibration images from the training run's held-out split.")
@calib_method_option("--calib-method", "calib_method", f"How INT8 activation ranges are chosen, for every INT8 form "
                     f"(quantize --method) [default: {limits.CALIB_METHOD}].")
@max_int8_drop_option("INT8 gate and quantization guard: largest allowed top-1 drop against FP32, points.")
@min_int8_agreement_option()
@click.option("--triton/--no-triton", default=True, show_default=True,
              help="Write the Triton repository and, where a tritonserver exists, serve and score it.")
@click.option("--bench/--no-bench", default=True, show_default=True, help="Time every artifact.")
@requests_option("Timed one-image requests per artifact (batches of 32: an eighth as many).", name="bench_requests",
                 default=50, old=["--bench-requests"])
@progress_option
def pipeline(arch, data, data_dir, skip_bad_images, checkpoint, out, epochs, seed, device, eval_images, calib_size,
             calib_method, max_int8_drop, min_int8_agreement, triton, bench, bench_requests, progress):
    """Train (or take --checkpoint), export FP32 and FP16, quantize INT8 (TensorRT and CPU forms),
    build TensorRT engines where TensorRT and a GPU exist, write a Triton repository, score every
    artifact against PyTorch FP32 on the same test images (and the served model through a real
    tritonserver), time them, and write OUTPUT/report.md, report.json and report.png.

    \b
    Each step is cached by the hashes of its inputs and options: a rerun skips what is unchanged,
    a changed option reruns the steps downstream of it, and an interrupted run resumes. Exit code 0
    when every step ran (or was skipped for want of TensorRT, a GPU or tritonserver) and every gate
    passed; 1 otherwise (the report says which step failed and why).
    """
    import sys
    from pathlib import Path

    from wrn_deploy.pipeline.flow import PipelineOptions, run_pipeline
    from wrn_deploy.pipeline.setup import claim_folder, resolve

    opts = resolve(PipelineOptions(out=Path(out) if out else None, arch=arch, data=data, data_dir=data_dir,
                                   checkpoint=checkpoint, epochs=epochs, seed=seed, device=device,
                                   eval_images=eval_images, calib_size=calib_size,
                                   calib_method=calib_method or limits.CALIB_METHOD, max_int8_drop=max_int8_drop,
                                   gates=limits.Gates(int8_max_drop=max_int8_drop,
                                                      int8_min_agreement=min_int8_agreement), triton=triton, bench=bench,
                                   bench_requests=bench_requests, skip_bad_images=skip_bad_images,
                                   progress=progress))
    with claim_folder(opts):
        rep = run_pipeline(opts, say=lambda line: click.echo(line, err=False))
    click.echo(f"report: {opts.out / 'report.md'}, report.json, report.png")
    click.echo("PASS: every gate of every artifact" if rep["passed"] else
               "FAIL: " + (", ".join(rep["failed_steps"]) + " failed" if rep["failed_steps"] else "a gate failed"))
    sys.exit(0 if rep["passed"] else 1)


@click.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
def report(folders):
    """Redraw FOLDER/report.md and report.png from FOLDER/report.json, for each pipeline FOLDER."""
    from wrn_deploy.pipeline.report import render

    for folder in folders:
        click.echo(f"wrote {render(folder)}")
