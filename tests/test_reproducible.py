"""Artifacts are byte-reproducible and path-free: the same inputs and options give the same bytes in
any folder (and on any day), and no artifact holds a folder of the machine that made it."""

import json
import shutil

import onnx
import pytest

from tests.conftest import run_cli
from wrn_deploy import __version__
from wrn_deploy.card import STACK_TRACE_KEY, Step, read_card


def _make(kit, folder):
    """Export, quantize (the CPU form) and write a Triton repository inside ``folder``, from a copy
    of the kit's checkpoint in ``folder/run``."""
    run = folder / "run"
    run.mkdir(parents=True)
    shutil.copy(kit / "run" / "best.safetensors", run)
    run_cli("export", run / "best.safetensors", "-o", folder / "m.onnx", "--no-verify")
    run_cli("quantize", folder / "m.onnx", "-o", folder / "q.onnx", "--target", "cpu", "--calib-dir",
            folder / "calib", "--calib-size", "32", "--no-guard", "--no-progress")
    run_cli("triton", folder / "q.onnx", "-o", folder / "repo", "--backend", "python", "--no-check-load")
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and (p.suffix == ".onnx" or "repo" in p.parts)}


def _side_reports(folder):
    """The reports written beside the models: path-free too, though not byte-equal (they hold times)."""
    return {f"{folder.name}/{p.name}": p.read_bytes() for p in folder.glob("*.report.json")}


def test_two_makes_in_different_folders_are_byte_equal_and_path_free(kit, tmp_path):
    a = _make(kit, tmp_path / "first-folder")
    b = _make(kit, tmp_path / "second" / "deeper-folder")
    assert set(a) == set(b) and len(a) >= 6, sorted(a)  # m.onnx, q.onnx, the repository's files
    assert [str(k) for k in a if a[k] != b[k]] == []
    reports = {**_side_reports(tmp_path / "first-folder"), **_side_reports(tmp_path / "second" / "deeper-folder")}
    assert sorted(reports) == [f"{f}/{m}.report.json" for f in ("deeper-folder", "first-folder") for m in "mq"]
    for name, data in {**a, **b, **reports}.items():
        for folder in (str(tmp_path), "first-folder", "deeper-folder", str(kit)):
            assert folder.encode() not in data, f"{name} holds {folder}"
    cpu_int8 = onnx.load(str(tmp_path / "first-folder" / "q.onnx"))  # ONNX Runtime's quantizer names itself
    assert (cpu_int8.producer_name, cpu_int8.producer_version) == ("wrn-deploy", __version__)
    card = read_card(tmp_path / "first-folder" / "q.onnx")
    assert card.parent.path == "m.onnx" and card.origin.path == "run/best.safetensors"
    assert card.step.at is None  # no time unless SOURCE_DATE_EPOCH asks for one
    side = json.loads(reports["first-folder/q.report.json"])  # a reader finds each file from the report's folder
    assert (side["output"], side["source"]) == ("q.onnx", "m.onnx")
    assert side["calibration"]["folder"].startswith("calib/")


@pytest.mark.parametrize("name", ["m.onnx", "h.onnx", "q.onnx"])
def test_every_onnx_names_wrn_deploy_as_its_producer_and_has_no_stack_traces(kit, name):
    model = onnx.load(str(kit / name))
    assert (model.producer_name, model.producer_version) == ("wrn-deploy", __version__)
    assert not [p for n in model.graph.node for p in n.metadata_props if p.key == STACK_TRACE_KEY]
    card = json.loads({p.key: p.value for p in model.metadata_props}["wrn_deploy.card"])
    assert not card["parent"]["path"].startswith("/") and not card["origin"]["path"].startswith("/")


def test_a_time_only_where_source_date_epoch_asks(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert Step("x").at is None
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert Step("x").at == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    from wrn_deploy.errors import UserError

    with pytest.raises(UserError, match="SOURCE_DATE_EPOCH"):
        Step("x")
