"""``wrn-deploy eval``: candidates against the PyTorch FP32 reference, with paired statistics and gates."""

import click

from wrn_deploy import limits
from wrn_deploy.commands.options import (Finite, allow_other_data_option, allow_unverified_option, batch_size_option,
                                         data_options, device_option, force_option, images_option,
                                         max_int8_drop_option, min_int8_agreement_option, output_option,
                                         progress_option, resolve_device, runtime_options, spelled,
                                         verify_key_option, check_runtime)


@click.command(name="eval")
@click.option("--engine", multiple=True, type=click.Path(dir_okay=False), help="Candidate: a TensorRT .plan.")
@click.option("--onnx", multiple=True, type=click.Path(dir_okay=False), help="Candidate: an ONNX file (ONNX Runtime).")
@click.option("--checkpoint", multiple=True, type=click.Path(dir_okay=False), help="Candidate: a checkpoint (PyTorch).")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="PyTorch FP32 checkpoint to compare with [default: the candidates' source checkpoint].")
@data_options()
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="val: the part of the training split that the training run held out.")
@images_option("Score only the first N images of the split [default: all].", name="limit", old=["--limit"])
@batch_size_option("Images per inference call (memory and speed only: the scores do not change).", name="batch",
                   default=limits.BATCH, old=["--batch"])
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), default="cpu", show_default=True,
              help="ONNX Runtime execution provider for --onnx.")
@runtime_options("the --onnx candidates")
@device_option("cpu", help="Where PyTorch runs the --checkpoint candidates (the reference runs on the CPU).")
@click.option("--min-agreement", type=Finite(0, 100), default=limits.FP32_MIN_AGREEMENT, show_default=True, help="FP32 gate, %.")
@click.option("--min-fp16-agreement", type=Finite(0, 100), default=limits.FP16_MIN_AGREEMENT, show_default=True,
              help="FP16 gate, %.")
@click.option("--min-bf16-agreement", type=Finite(0, 100), default=limits.BF16_MIN_AGREEMENT, show_default=True,
              help="BF16 gate (--precision-hint bf16 where the CPU computes BF16), %.")
@max_int8_drop_option("INT8 gate: largest allowed top-1 drop against FP32, points.")
@min_int8_agreement_option()
@click.option("--allow-calibration-overlap", is_flag=True, help="Score an INT8 model on its calibration images.")
@allow_other_data_option("Score on data other than the model's (same classes).")
@verify_key_option()
@click.option("--allow-host-code", is_flag=True, help="Let a trusted version-compatible plan run its host code.")
@allow_unverified_option()
@output_option("Report prefix: writes OUTPUT.json and OUTPUT.md [default: CANDIDATE.eval beside each candidate; "
               "only with one candidate].", name="report", old=["--report"])
@force_option
@progress_option
def eval_(engine, onnx, checkpoint, reference, data, data_dir, skip_bad_images, split, limit, batch, provider, runtime,
          precision_hint, device, min_agreement, min_fp16_agreement, min_bf16_agreement, max_int8_drop, min_int8_agreement, allow_calibration_overlap, allow_other_data, verify_key,
          allow_host_code, allow_unverified, report, force, progress):
    """Check candidates' accuracy parity with the PyTorch FP32 model on the same images.

    Several candidates (repeat the options) share one reference run. Exit code 0 when every gate of
    every candidate's precision passes, 1 when one fails.
    """
    import os
    import sys

    from wrn_deploy.card import artifact_kind
    from wrn_deploy.errors import UserError
    from wrn_deploy.fileio import check_output, write_json, write_text
    from wrn_deploy.parity.evaluate import EvalOptions, evaluate, input_files
    from wrn_deploy.parity.report import markdown, terminal

    paths = [*engine, *onnx, *checkpoint]
    check_runtime(runtime, precision_hint)
    if runtime == "openvino" and (engine or checkpoint):
        raise UserError("--runtime openvino runs --onnx candidates only; evaluate plans and checkpoints apart")
    if device == "auto":
        device = resolve_device(device)
    if not paths:
        raise UserError("give a candidate: --engine, --onnx or --checkpoint (each may repeat)")
    real = [os.path.realpath(p) for p in paths]  # one report per candidate: a file twice would collide
    twice = next((p for p, r in zip(paths, real) if real.count(r) > 1), None)
    if twice:
        raise UserError(f"{twice} is given twice as a candidate (by this name or another)")
    if reference and artifact_kind(reference) != "checkpoint":  # an export against an export proves nothing
        raise UserError(f"the reference {reference} is not a .safetensors checkpoint; the reference is the "
                        "PyTorch FP32 checkpoint (.safetensors) the candidates were made from")
    if report and len(paths) > 1:
        raise UserError(f"{spelled('report')} names one report; with several candidates each report goes beside "
                        "its model")
    opts = EvalOptions(data=data, data_dir=data_dir, split=split, limit=limit, batch=batch, reference=reference,
                       device=device, provider=provider, runtime=runtime, precision_hint=precision_hint,
                       gates=limits.Gates(min_agreement, min_fp16_agreement, max_int8_drop, min_int8_agreement,
                                          min_bf16_agreement),
                       allow_calibration_overlap=allow_calibration_overlap, allow_other_data=allow_other_data,
                       skip_bad_images=skip_bad_images, verify_key=verify_key,
                       allow_host_code=allow_host_code, allow_unverified=allow_unverified, progress=progress)
    # OpenVINO's reports go beside ONNX Runtime's, not over them
    tag = "" if runtime == "onnxruntime" else f".openvino-{precision_hint}"
    prefixes = [report] if report else [f"{p}{tag}.eval" for p in paths]
    inputs = input_files(paths, opts)
    for prefix in prefixes:  # checked before any work, so a refused report costs nothing
        for suffix in (".json", ".md"):
            check_output(f"{prefix}{suffix}", inputs, force)
    reports = evaluate(paths, opts)
    for rep in reports:  # the verdict first: a report that cannot be written loses nothing shown
        click.echo(terminal(rep))
    for prefix, rep in zip(prefixes, reports):
        rep = _portable(rep, f"{prefix}.json")
        write_json(f"{prefix}.json", rep, replace=force)
        write_text(f"{prefix}.md", markdown(rep), replace=force)
        click.echo(f"report: {prefix}.json, {prefix}.md")
    sys.exit(0 if all(r["passed"] for r in reports) else 1)


def _portable(rep: dict, report: str) -> dict:
    """The report as written: candidate and reference named from the report's folder, no machine path."""
    from wrn_deploy.fileio import named_from

    def moved(part: str) -> dict:
        return {**rep[part], "path": named_from(rep[part]["path"], report)}

    return {**rep, "candidate": moved("candidate"), "reference": moved("reference")}
