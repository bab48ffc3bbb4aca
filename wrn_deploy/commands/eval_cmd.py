"""``wrn-deploy eval``: a candidate against the PyTorch FP32 reference, with paired statistics and gates."""

import click

from wrn_deploy.constants import DATASETS


@click.command(name="eval")
@click.option("--engine", type=click.Path(dir_okay=False), help="Candidate: a TensorRT .plan.")
@click.option("--onnx", type=click.Path(dir_okay=False), help="Candidate: an ONNX file (ONNX Runtime).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Candidate: a checkpoint (PyTorch).")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="PyTorch FP32 checkpoint to compare with [default: the candidate card's source].")
@click.option("--data", type=click.Choice(DATASETS), help="Dataset [default: the model's].")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@click.option("--limit", type=click.IntRange(1), help="Score only the first N images.")
@click.option("--batch", type=click.IntRange(1), default=64, show_default=True)
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), default="cpu", show_default=True,
              help="ONNX Runtime execution provider for --onnx.")
@click.option("--device", default="cpu", show_default=True, help="Device for --checkpoint.")
@click.option("--min-agreement", type=float, default=99.9, show_default=True, help="FP32 gate, %.")
@click.option("--max-fp16-diff", type=float, default=0.1, show_default=True, help="FP16 gate, points.")
@click.option("--max-int8-drop", type=float, default=0.5, show_default=True, help="INT8 gate, points.")
@click.option("--allow-calibration-overlap", is_flag=True, help="Score an INT8 model on its calibration images.")
@click.option("--verify-key", type=click.Path(dir_okay=False), help="Ed25519 public key the plan must verify with.")
@click.option("--allow-host-code", is_flag=True, help="Let a trusted version-compatible plan run its host code.")
@click.option("--report", type=click.Path(dir_okay=False), help="Prefix for REPORT.json and REPORT.md "
              "[default: beside the candidate].")
@click.option("--progress/--no-progress", default=True, show_default=True)
def eval_(engine, onnx, checkpoint, reference, data, data_dir, split, limit, batch, provider, device,
          min_agreement, max_fp16_diff, max_int8_drop, allow_calibration_overlap, verify_key, allow_host_code,
          report, progress):
    """Check a candidate's accuracy parity with the PyTorch FP32 model on the same images.

    Exit code 0 when every gate of the candidate's precision passes, 1 when one fails.
    """
    import sys

    from wrn_deploy.errors import UserError
    from wrn_deploy.fileio import write_json, write_text
    from wrn_deploy.parity.evaluate import EvalOptions, evaluate
    from wrn_deploy.parity.gates import Gates
    from wrn_deploy.parity.report import markdown, terminal

    given = [(k, p) for k, p in (("engine", engine), ("onnx", onnx), ("checkpoint", checkpoint)) if p]
    if len(given) != 1:
        raise UserError("give exactly one candidate: --engine, --onnx or --checkpoint")
    kind, path = given[0]
    opts = EvalOptions(dataset=data, data_dir=data_dir, split=split, limit=limit, batch=batch, reference=reference,
                       device=device, provider=provider, gates=Gates(min_agreement, max_fp16_diff, max_int8_drop),
                       allow_calibration_overlap=allow_calibration_overlap, verify_key=verify_key,
                       allow_host_code=allow_host_code, progress=progress)
    rep = evaluate(kind, path, opts)
    prefix = report or f"{path}.eval"
    write_json(f"{prefix}.json", rep)
    write_text(f"{prefix}.md", markdown(rep))
    click.echo(terminal(rep))
    click.echo(f"report: {prefix}.json, {prefix}.md")
    sys.exit(0 if rep["passed"] else 1)
