"""The pipeline on the synthetic data: every artifact scored against one reference run, steps cached
by their inputs, failures reported without losing earlier work."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli
from tests.pipeline.conftest import FAST, report, statuses
from wrn_deploy.limits import CALIB_METHOD

ONNX = ("fp32", "fp16", "int8", "int8-cpu")
# OpenVINO rows, where the openvino package is installed (the pipeline adds none elsewhere)
OPENVINO = tuple(a.name for a in __import__("wrn_deploy.pipeline.steps", fromlist=["x"]).openvino_rows())


def _has_tensorrt() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def test_first_run_scores_every_artifact_against_one_reference(first_run):
    out, stdout = first_run
    rep = report(out)
    rows = {r["artifact"]: r for r in rep["rows"]}
    ref_top1 = rows["checkpoint"]["stats"]["cand_top1"]
    for name in ONNX:
        r = rows[name]
        assert r["status"] == "done", r
        assert r["stats"]["images"] == 500 and r["stats"]["ref_top1"] == ref_top1
        assert r["bytes"] == (out / r["file"]).stat().st_size
        assert r["gates"] and r["passed"] is True
        assert r["bench"]["p50_ms"] > 0 and r["bench"]["images_per_s"] > 0
    assert rows["fp32"]["stats"]["agreement"] >= 99.9
    assert rows["int8"]["precision"] == "int8+fp16" and rows["int8-cpu"]["precision"] == "int8+fp32"
    if not _has_tensorrt():
        for name in ("plan-fp32", "plan-fp16", "plan-int8"):
            assert rows[name]["status"] == "skipped" and "TensorRT" in rows[name]["reason"]
    assert rep["data"]["images"] == 500 and rep["passed"] is True
    assert rep["gates"]["int8_min_agreement"] == 80 and all(
        any(g["gate"] == "top-1 agreement >= 80%" for g in rows[n]["gates"]) for n in ("int8", "int8-cpu"))
    assert "- Gates: FP32 agreement >= 99.9%; FP16 agreement >= 99%; INT8 drop <= 5 pts and agreement >= 80%" in \
        (out / "report.md").read_text()
    manifest = out / rep["calibration"]["manifest"]
    assert manifest.is_file() and json.loads(manifest.read_text())["size"] == 64
    assert json.loads(manifest.read_text())["method"] == rep["calibration"]["method"] == CALIB_METHOD
    text = (out / "report.md").read_text()
    for name in ONNX:
        assert f"| {name} | onnxruntime-cpu |" in text
    assert "**PASS**" in text and "## Steps" in text
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "PASS: every gate" in stdout
    from wrn_deploy.cpuinfo import instruction_set

    assert instruction_set() in text                                      # the CPU's INT8/BF16 instructions
    for name in OPENVINO:
        r = rows[name]
        assert r["status"] == "done" and r["passed"] is True and r["bench"]["images_per_s"] > 0, r
        assert r["backend"].startswith("openvino-cpu-") and r["stats"]["ref_top1"] == ref_top1
    if OPENVINO:
        assert rows["openvino-fp32"]["stats"]["agreement"] >= 99.9
        assert rows["int8-openvino"]["precision"] == "int8+fp32, computed int8"
        assert rows["int8-openvino"]["gates"][0]["gate"].startswith("top-1 drop")
        assert (out / "model.int8-openvino.onnx").is_file()


def test_the_report_matches_a_standalone_eval(first_run, tmp_path):
    """The pipeline's INT8 row is what `wrn-deploy eval` measures on the same images."""
    out, _ = first_run
    run_cli("eval", "--onnx", out / "model.int8.onnx", "--images", "500", "--max-int8-drop", "5",
            "--min-int8-agreement", "80", "-o", tmp_path / "e", "--no-progress")
    alone = json.loads((tmp_path / "e.json").read_text())["stats"]
    row = next(r for r in report(out)["rows"] if r["artifact"] == "int8")
    assert row["stats"] == alone


def test_a_rerun_with_nothing_changed_reuses_every_step(copy_of_run):
    before = {p: p.read_bytes() for p in copy_of_run.glob("model*.onnx")}
    proc = run_cli("pipeline", *FAST, "--no-triton", "-o", copy_of_run)
    ran = {s: st for s, st in statuses(proc.stdout).items() if st not in ("cached", "skipped", "blocked")}
    assert ran == {}, proc.stdout
    assert {p: p.read_bytes() for p in copy_of_run.glob("model*.onnx")} == before


def test_a_changed_option_or_file_reruns_only_what_depends_on_it(copy_of_run):
    with open(copy_of_run / "model.fp16.onnx", "ab") as f:  # an artifact edited behind the pipeline's back
        f.write(b"\0")
    args = [a if a != "64" else "96" for a in FAST]  # and --calib-size 96, with the pooled percentile
    st = statuses(run_cli("pipeline", *args, "--calib-method", "percentile", "--no-triton", "-o", copy_of_run).stdout)
    ov = {f"{k}-int8-openvino" for k in ("quantize", "eval", "bench")} if OPENVINO else set()
    assert {s for s, v in st.items() if v == "done"} == {
        "quantize-int8", "quantize-int8-cpu", "eval-int8", "eval-int8-cpu", "bench-int8", "bench-int8-cpu",
        "export-fp16", *ov}, st
    # The export is byte-reproducible: the FP16 file made again is the one already scored and timed.
    assert {s for s, v in st.items() if v == "cached"} >= {"train", "export-fp32", "reference", "eval-fp32",
                                                           "eval-fp16", "bench-fp16"}, st
    calibration = report(copy_of_run)["calibration"]
    assert calibration["images"] == 96 and calibration["method"] == "percentile"
    assert "-tensorrt-fusion-percentile99.99-96-" in calibration["manifest"]
    assert "split, percentile ranges, manifest" in (copy_of_run / "report.md").read_text()


def test_a_failed_step_is_reported_and_loses_nothing(copy_of_run, monkeypatch):
    from click.testing import CliRunner

    import wrn_deploy.quant.onnx_to_int8 as q
    from wrn_deploy.cli import cli
    from wrn_deploy.errors import UserError

    int8 = (copy_of_run / "model.int8.onnx").read_bytes()

    def refuse(*a, **k):
        raise UserError("calibration refused on purpose")

    monkeypatch.setattr(q, "quantize_onnx", refuse)
    args = [a if a != "64" else "96" for a in FAST]
    res = CliRunner().invoke(cli, ["pipeline", *args, "--no-triton", "-o", str(copy_of_run)])
    assert res.exit_code == 1, res.output
    rep = report(copy_of_run)
    assert rep["failed_steps"] == ["quantize-int8", "quantize-int8-cpu"] + (["quantize-int8-openvino"] if OPENVINO
                                                                          else []) and rep["passed"] is False
    steps = {s["step"]: s for s in rep["steps"]}
    assert steps["eval-int8"]["status"] == "blocked" and steps["eval-fp32"]["status"] == "cached"
    assert "calibration refused on purpose" in (copy_of_run / "report.md").read_text()
    assert (copy_of_run / "model.int8.onnx").read_bytes() == int8  # the earlier artifact is still there


def test_an_interrupted_run_resumes_where_it_stopped(copy_of_run):
    args = [a if a != "64" else "80" for a in FAST]
    proc = subprocess.Popen([sys.executable, "-m", "wrn_deploy", "pipeline", *args, "--no-triton", "-o",
                             str(copy_of_run)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    for line in proc.stdout:  # interrupt while quantize-int8 runs
        if "export-fp16" in line:
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert not list(copy_of_run.rglob("*wrn-tmp*"))
    st = statuses(run_cli("pipeline", *args, "--no-triton", "-o", copy_of_run).stdout)
    assert st["export-fp16"] == "cached" and st["quantize-int8"] == "done"
    assert report(copy_of_run)["passed"] is True


@pytest.mark.parametrize("case", ["foreign folder", "a file", "onnx as checkpoint", "arch mismatch", "bad arch",
                                  "missing data dir"])
def test_refusals_are_one_line_and_leave_nothing(case, tmp_path, first_run):
    out = tmp_path / "out"
    args = ["pipeline", "-o", out, "--no-progress"]
    if case == "foreign folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "a file":
        out.write_text("mine")
    elif case == "onnx as checkpoint":
        args += ["--checkpoint", first_run[0] / "model.onnx"]
    elif case == "arch mismatch":
        args += ["--checkpoint", first_run[0] / "train" / "best.safetensors", "--arch", "wrn-16-1"]
    elif case == "bad arch":
        args += ["--arch", "wrn-7-1"]
    else:
        args += ["--data", "cifar10", "--data-dir", tmp_path / "nowhere"]
    before = sorted(tmp_path.rglob("*"))
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(tmp_path.rglob("*")) == before
    if case in ("foreign folder", "a file"):
        assert "mine" in ((out / "notes.txt") if out.is_dir() else out).read_text()


def test_two_pipelines_never_share_a_folder(copy_of_run):
    from wrn_deploy.fileio import folder_lock

    with folder_lock(copy_of_run, "test"):
        proc = run_cli("pipeline", *FAST, "--no-triton", "-o", copy_of_run, check=False, process=True)
    assert proc.returncode == 2 and "another wrn-deploy pipeline is using" in proc.stderr


def test_report_redraws_markdown_and_plot_from_json(copy_of_run):
    text = (copy_of_run / "report.md").read_text()
    (copy_of_run / "report.md").unlink()
    (copy_of_run / "report.png").unlink()
    from tests.test_torch_free import cli_without_torch

    proc = cli_without_torch("report", copy_of_run)  # a redraw runs no model: no torch import
    assert proc.returncode == 0, proc.stderr
    assert (copy_of_run / "report.md").read_text() == text
    assert (copy_of_run / "report.png").stat().st_size > 1000


@pytest.mark.parametrize("content", [None, "{not json", '{"format": "other"}', '{"format": "wrn-deploy.report/1"}',
                                     '{"format": "wrn-deploy.report/1", "model": {}, "rows": [1], "steps": []}'])
def test_report_refuses_what_is_not_a_report(content, tmp_path):
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    proc = run_cli("report", tmp_path, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "report.md").exists()
