"""The typed card: one reader for every artifact kind, lineage, precision, validation."""

import json
from dataclasses import replace

import pytest

from tests.export.conftest import make_checkpoint
from wrn_deploy.card import (
    FP16,
    FP32,
    Card,
    Precision,
    Step,
    artifact_kind,
    new_card,
    read_card,
)
from wrn_deploy.errors import UserError


def test_precision_spelling_round_trips():
    for text in ("fp32", "fp16", "bf16", "int8+fp16", "int8+fp32"):
        assert str(Precision.parse(text)) == text
    assert Precision.parse("fp16") == FP16 != FP32
    for bad in ("int8", "fp16+fp32", "int4", "int8+int8"):
        with pytest.raises(UserError):
            Precision.parse(bad)


def test_card_round_trips_through_json():
    card = new_card("wrn-10-1", ["a", "b"], 32, (0.5,) * 3, (0.25,) * 3, Step("train", {"lr": 0.1}),
                    dataset={"name": "synthetic"}, training={"epoch": 3})
    again = Card.from_dict(json.loads(card.to_json()), "here")
    assert again == card and again.num_classes == 2 and not again.input.normalized_in_graph


def test_every_artifact_kind_reads_through_one_function(tmp_path):
    ckpt = make_checkpoint(tmp_path / "c.safetensors", arch="wrn-10-1")
    card = read_card(ckpt)
    assert card.kind == "checkpoint" and card.origin is None
    onnx_card = card.derive("onnx", ckpt, tmp_path / "m.onnx", Step("export"),
                            input=replace(card.input, normalized_in_graph=True))
    assert onnx_card.parent.kind == "checkpoint" and onnx_card.origin == onnx_card.parent
    assert onnx_card.parent.path == "c.safetensors"  # relative to the artifact's folder: no machine path
    int8 = onnx_card.derive("onnx", ckpt, tmp_path / "q" / "q.onnx", Step("quantize"),
                            precision=Precision("int8", "fp16"))
    # the root stays the trained checkpoint, now seen from the INT8 file's folder
    assert int8.origin == replace(onnx_card.origin, path="../c.safetensors")
    (tmp_path / "m.plan").write_bytes(b"plan")
    (tmp_path / "m.plan.json").write_text(json.dumps({"card": int8.to_dict()}))
    with pytest.raises(UserError, match="describes a onnx, but the file is a plan"):
        read_card(tmp_path / "m.plan")
    plan = int8.derive("plan", ckpt, tmp_path / "m.plan", Step("build"))
    (tmp_path / "m.plan.json").write_text(json.dumps({"card": plan.to_dict()}))
    assert read_card(tmp_path / "m.plan") == plan and plan.precision == int8.precision
    assert [artifact_kind(p) for p in ("a.safetensors", "b.onnx", "c.plan", "d.engine")] == [
        "checkpoint", "onnx", "plan", "plan"]


@pytest.mark.parametrize("change,fragment", [
    ({"classes": []}, "classes"),
    ({"classes": [1, 2]}, "classes"),
    ({"num_classes": 4}, "num_classes=4"),
    ({"mean": [0.5]}, "mean and std"),
    ({"std": [0.2, 0.2, 0.0]}, "std positive"),
    ({"input_size": -4}, "input_size"),
    ({"input_size": "big"}, "malformed"),
    ({"dropout": 2}, "dropout"),
    ({"precision": "int3"}, "int3"),
    ({"kind": "zip"}, "kind"),
    ({"format": "wrn-deploy.card/1"}, "card format"),
    ({"step": None}, "malformed"),
    ({"num_classes": "3"}, r"num_classes must be a whole number, got '3' \(str\)"),
    ({"classes": ["a", "b\nc", "d"]}, r"class 1 \('b\\nc'\) has a control"),
    ({"classes": ["a", "b", "c\u2028d"]}, "U\\+2028"),
    ({"classes": ["a\u202eb", "b", "c"]}, "U\\+202E"),
    ({"classes": [" a", "b", "c"]}, "white space"),
    ({"preprocess": {"resize": 16, "interpolation": "bilinear"}}, "resize 16 is smaller than the input size 32"),
    ({"preprocess": {"resize": 0}}, "resize 0 is not a positive"),
    ({"preprocess": {"resize": 36.5}}, "resize 36.5 is not a positive"),
    ({"preprocess": {"resize": True}}, "resize True is not a positive"),
    ({"preprocess": {"resize": 40, "interpolation": "lanczos"}}, "interpolation 'lanczos': choose one of"),
    ({"preprocess": {"resize": 40, "crop": 32}}, "unknown field 'crop'"),
    ({"preprocess": "resize 256"}, "preprocess must be an object"),
    ({"arch": 'wrn-10-1" } } model_operations { op_library_filename: "x.so'}, "is not a WRN name"),
    ({"arch": "wrn-10-1 "}, "is not a WRN name"),
    ({"arch": "wrn-11-1"}, "is not a WRN name"),
    ({"arch": 7}, "is not a WRN name"),
    ({"input": {"layout": "NCHW\nparameters {}", "value_range": [0, 1]}}, "input layout"),
])
def test_a_bad_card_is_one_clear_error(change, fragment):
    good = new_card("wrn-10-1", ["a", "b", "c"], 32, (0.5,) * 3, (0.25,) * 3, Step("x")).to_dict()
    with pytest.raises(UserError, match=fragment) as e:
        Card.from_dict({**good, **change}, "m.onnx")
    assert "\n" not in e.value.format_message() and e.value.format_message().startswith("m.onnx")


def test_preprocess_round_trips_and_old_cards_read_as_before():
    from wrn_deploy.card import Preprocess

    card = new_card("wrn-50-2", ["a", "b"], 224, (0.5,) * 3, (0.25,) * 3, Step("import"),
                    preprocess=Preprocess(232, "bicubic"))
    d = json.loads(card.to_json())
    assert d["preprocess"] == {"resize": 232, "interpolation": "bicubic"}
    assert Card.from_dict(d, "x") == card
    # Cards written before the field: the rule the data path applied to them (data/batches.py before
    # 0.5): 64 pixels and more resize to int(size * 256 / 224) bilinear, smaller inputs take images as they are.
    for size, resize in ((224, 256), (288, 329), (96, 109), (64, 73), (32, None), (48, None)):
        old = {k: v for k, v in json.loads(new_card("wrn-50-2", ["a", "b"], size, (0.5,) * 3, (0.25,) * 3,
                                                    Step("train")).to_json()).items() if k != "preprocess"}
        assert Card.from_dict(old, "old.onnx").preprocess == Preprocess(resize, "bilinear"), size
    assert Card.from_dict({**d, "preprocess": {"resize": None}}, "x").preprocess == Preprocess(None, "bilinear")


def test_the_data_path_reads_the_cards_preprocess(tmp_path):
    """A folder of large images goes through the card's resize and interpolation; without a resize
    (a CIFAR-style card) large images are refused, not silently cropped."""
    import numpy as np
    import torch
    from PIL import Image

    from wrn_deploy.card import Preprocess
    from wrn_deploy.data import for_card

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(6 if split == "train" else 2):  # 12 training images: one held out
                x = torch.randint(0, 256, (90, 120, 3), generator=torch.Generator().manual_seed(i)).to(torch.uint8)
                Image.fromarray(x.numpy()).save(tmp_path / split / cls / f"{i}.png")

    def images(preprocess):
        card = new_card("wrn-50-2", ["a", "b"], 64, (0.5,) * 3, (0.25,) * 3, Step("x"), preprocess=preprocess)
        return for_card(card, "test", "imagefolder", tmp_path).images()

    default, wider, bicubic = images(None), images(Preprocess(90)), images(Preprocess(73, "bicubic"))
    assert default.shape == wider.shape == (4, 3, 64, 64)
    assert not np.array_equal(default, wider) and not np.array_equal(default, bicubic)
    assert np.array_equal(default, images(Preprocess(73, "bilinear")))  # the old rule, spelled out
    card32 = new_card("wrn-16-1", ["a", "b"], 32, (0.5,) * 3, (0.25,) * 3, Step("x"))
    with pytest.raises(UserError, match="takes its 32x32 images as they are"):
        for_card(card32, "test", "imagefolder", tmp_path)


def test_unreadable_artifacts(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\x00garbage")
    (tmp_path / "y.plan").write_bytes(b"plan")
    (tmp_path / "z.plan").write_bytes(b"plan")
    (tmp_path / "z.plan.json").write_bytes(b"\xff\xfe not json")
    for path, fragment in (("x.onnx", "not a readable ONNX"), ("y.plan", "no manifest"), ("z.plan", "not valid JSON"),
                           ("none.safetensors", "does not exist"), ("w.txt", "unknown artifact type")):
        with pytest.raises(UserError, match=fragment):
            read_card(tmp_path / path)


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "esc\x1b[31m", "nel\x85", "rtl\u202eoverride",
                                  "zero\u200bwidth", "line\u2028sep", "para\u2029sep", "", "  ", "x" * 201])
def test_unsafe_class_names_are_refused_at_card_creation(name):
    with pytest.raises(UserError, match="class 1") as e:
        new_card("wrn-10-1", ["ok", name, "fine"], 32, (0.5,) * 3, (0.25,) * 3, Step("train"))
    assert "\n" not in e.value.format_message()
    with pytest.raises(UserError, match="same name"):
        new_card("wrn-10-1", ["ok", "ok"], 32, (0.5,) * 3, (0.25,) * 3, Step("train"))


def test_class_folders_with_unsafe_names_are_refused_before_training(tmp_path):
    from PIL import Image

    from tests.conftest import run_cli

    for name in ("cat", "dog\nbird"):
        for split in ("train", "test"):
            (tmp_path / "d" / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "d" / split / name / "0.png")
    proc = run_cli("train", "--arch", "wrn-10-1", "--data", "imagefolder", "--data-dir", tmp_path / "d", "--out",
                   tmp_path / "r", "--epochs", "1", check=False)
    assert proc.returncode == 2 and "class 1 ('dog\\nbird') has a control" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r" / "best.safetensors").exists()


MARKUP = ["<b>cat", "a|b", "*bold*", "`code`", "x & y", "q\"uote", "ünïcödé 猫"]


def test_markup_in_class_names_reaches_every_writer_intact_or_escaped(tmp_path):
    """Class names with markup and separators are allowed: labels.txt has one name a line, JSON
    reads back the same names, Markdown shows them escaped (no live HTML, no broken table)."""
    from PIL import Image

    from tests.conftest import run_cli

    data = tmp_path / "d"
    for i, name in enumerate(MARKUP):
        for split in ("train", "test"):
            (data / split / name).mkdir(parents=True)
            for j in range(3):
                Image.new("RGB", (32, 32), (30 * i, 9 * j, 5)).save(data / split / name / f"{j}.png")
    run_cli("train", "--arch", "wrn-10-1", "--data", "imagefolder", "--data-dir", data, "--out", tmp_path / "r",
            "--epochs", "1", "--val-size", "7", "--batch-size", "7", "--no-progress")
    classes = sorted(MARKUP)  # ImageFolder's order
    ckpt = tmp_path / "r" / "best.safetensors"
    assert list(read_card(ckpt).classes) == classes
    run_cli("export", ckpt, "-o", tmp_path / "m.onnx", "--no-verify")
    run_cli("triton", tmp_path / "m.onnx", "-o", tmp_path / "repo", "--name", "m", "--backend", "python",
            "--no-check-load")
    assert (tmp_path / "repo" / "m" / "labels.txt").read_text(encoding="utf-8").splitlines() == classes
    assert json.loads((tmp_path / "repo" / "m" / "card.json").read_text())["classes"] == classes
    proc = run_cli("eval", "--onnx", tmp_path / "m.onnx", "--data", "imagefolder", "--data-dir", data,
                   "--no-progress", check=False)
    assert proc.returncode in (0, 1)
    assert json.loads((tmp_path / "m.onnx.eval.json").read_text())["data"]["classes"] == classes
    text = (tmp_path / "m.onnx.eval.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| classes |"))
    assert row.count("|") == 3 and "<b>" not in row and "&lt;b&gt;cat" in row and "a&#124;b" in row
