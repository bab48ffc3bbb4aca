"""Step keys and records: what makes a step reusable, and what makes it run again."""

import os

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
    assert rec.fresh("export-fp32", "k1")["result"] == {"x": 1}
    assert rec.fresh("export-fp32", "k2") is None                     # another key
    f.write_bytes(b"graph!")
    assert Records(out, Hashes()).fresh("export-fp32", "k1") is None  # the output changed
    f.unlink()
    assert Records(out, Hashes()).fresh("export-fp32", "k1") is None  # the output is gone


def test_started_and_failed_steps_are_never_reused(tmp_path):
    rec = Records(tmp_path, Hashes())
    for status in ("started", "failed"):
        rec.save("train", "k", status)
        assert rec.fresh("train", "k") is None
    (tmp_path / "steps" / "train.json").write_text("{broken")
    assert rec.load("train") is None


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
