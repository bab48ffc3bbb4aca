"""Step keys and records: what makes a step reusable, and what makes it run again."""

import json
import os
import shutil

from wrn_deploy.pipeline.records import Hashes, Records, data_fingerprint, step_key


def test_the_key_changes_with_options_and_inputs_only():
    k = step_key("export-fp32", {"opset": 18}, {"checkpoint": "aa"})
    assert k == step_key("export-fp32", {"opset": 18}, {"checkpoint": "aa"})
    assert k != step_key("export-fp32", {"opset": 17}, {"checkpoint": "aa"})
    assert k != step_key("export-fp32", {"opset": 18}, {"checkpoint": "ab"})
    assert k != step_key("export-fp16", {"opset": 18}, {"checkpoint": "aa"})


def test_a_record_is_fresh_only_while_its_outputs_are_the_files_it_wrote(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    f = out / "sub" / "model.onnx"
    f.write_bytes(b"graph")
    rec = Records(out, Hashes())
    rec.save("export-fp32", "k1", "done", [f], result={"x": 1})
    assert rec.fresh("export-fp32", "k1")[0]["result"] == {"x": 1}
    assert rec.fresh("export-fp32", "k2") == (None, None)              # another key: the ordinary rerun
    f.write_bytes(b"graph!")
    changed = "its output sub/model.onnx changed since the step wrote it"
    assert Records(out, Hashes()).fresh("export-fp32", "k1") == (None, changed)
    f.unlink()
    assert Records(out, Hashes()).fresh("export-fp32", "k1") == (None, "its output sub/model.onnx is missing")


def test_started_and_failed_steps_are_never_reused(tmp_path):
    rec = Records(tmp_path, Hashes())
    for status in ("started", "failed"):
        rec.save("train", "k", status)
        assert rec.fresh("train", "k") == (None, None)
    (tmp_path / "steps" / "train.json").write_text("{broken")
    assert rec.load("train") is None and "unreadable" in rec.fresh("train", "k")[1]


def test_the_data_fingerprint_sees_added_and_edited_images(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    img = tmp_path / "train" / "cat" / "1.png"
    img.write_bytes(b"a")
    first = data_fingerprint("imagefolder", tmp_path)
    assert data_fingerprint("imagefolder", tmp_path) == first
    (tmp_path / "train" / "cat" / "2.png").write_bytes(b"b")
    second = data_fingerprint("imagefolder", tmp_path)
    assert second != first
    img.write_bytes(b"aa")
    os.utime(img, ns=(1, 1))
    assert data_fingerprint("imagefolder", tmp_path) != second
    assert data_fingerprint("synthetic", None) == "synthetic"


def _done(out, run="run-a"):
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "model.fp16.onnx"):
        (out / name).write_bytes(name.encode())
    rec = Records(out, Hashes(), run)
    rec.save("eval-fp32", "k", "done", [out / "model.onnx"], inputs={"model": "aa"}, result={"top1": 80.0})
    return rec


def test_a_hand_edited_record_is_not_reused(tmp_path):
    rec = _done(tmp_path)
    assert rec.fresh("eval-fp32", "k", {"model": "aa"})[0]["result"] == {"top1": 80.0}
    path = tmp_path / "steps" / "eval-fp32.json"
    data = json.loads(path.read_text())
    data["result"]["top1"] = 99.9                                   # a number no step produced
    path.write_text(json.dumps(data))
    got, why = rec.fresh("eval-fp32", "k", {"model": "aa"})
    assert got is None and "was edited or comes from another pipeline folder" in why
    assert rec.load("eval-fp32") is None                            # not even as the previous record
    data.pop("digest")
    path.write_text(json.dumps(data))
    assert rec.fresh("eval-fp32", "k", {"model": "aa"})[0] is None


def test_swapped_outputs_make_the_step_run_again(tmp_path):
    rec = _done(tmp_path)
    a, b = tmp_path / "model.onnx", tmp_path / "model.fp16.onnx"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    changed = "its output model.onnx changed since the step wrote it"
    assert rec.fresh("eval-fp32", "k", {"model": "aa"}) == (None, changed)


def test_recorded_inputs_must_be_the_current_ones(tmp_path):
    rec = _done(tmp_path)
    assert rec.fresh("eval-fp32", "k", {"model": "ab"}) == (None, None)


def test_a_record_copied_from_another_pipeline_folder_is_not_reused(tmp_path):
    _done(tmp_path / "a", run="run-a")
    other = _done(tmp_path / "b", run="run-b")                      # the same files, another folder
    shutil.copy(tmp_path / "a" / "steps" / "eval-fp32.json", tmp_path / "b" / "steps" / "eval-fp32.json")
    got, why = other.fresh("eval-fp32", "k", {"model": "aa"})
    assert got is None and "comes from another pipeline folder" in why
    moved = tmp_path / "moved"                                      # the whole folder moved keeps its run id
    shutil.copytree(tmp_path / "a", moved)
    assert Records(moved, Hashes(), "run-a").fresh("eval-fp32", "k", {"model": "aa"})[0] is not None


def test_run_step_reruns_a_tampered_record_and_says_so(tmp_path):
    """Through the pipeline's own run_step: an edited record is run again, and the record and the
    step line say why; a clean record is reused."""
    from wrn_deploy.pipeline.flow import Context, PipelineOptions, Step, _line, run_step
    from wrn_deploy.pipeline.setup import _check_marker
    from wrn_deploy.pipeline.steps import Done

    _check_marker(tmp_path)
    runs = []

    def work(ctx, previous):
        runs.append(previous)
        (ctx.out / "x.txt").write_text("made")
        return Done([ctx.out / "x.txt"], {"value": 1})

    step = Step("demo", work, options={"a": 1})
    assert run_step(Context(PipelineOptions(out=tmp_path)), step)["status"] == "done"
    assert run_step(Context(PipelineOptions(out=tmp_path)), step)["status"] == "cached" and len(runs) == 1
    path = tmp_path / "steps" / "demo.json"
    data = json.loads(path.read_text())
    data["result"]["value"] = 2
    path.write_text(json.dumps(data))
    state = run_step(Context(PipelineOptions(out=tmp_path)), step)
    assert state["status"] == "done" and state["result"] == {"value": 1} and len(runs) == 2
    assert "was edited" in state["rerun"] and "ran again: its record steps/demo.json was edited" in _line(
        "demo", state, 0.1)
