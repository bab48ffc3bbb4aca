"""The default recipe (what `wrn-deploy train` and the README's pipeline run) on the built-in synthetic
set, through the CLI. In a file of its own: the longest single test, run beside the others."""

import json

import pytest

from tests.conftest import run_cli
from wrn_deploy.checkpoint import model_from_checkpoint


def test_the_default_recipe_writes_a_complete_run(tmp_path):
    """One epoch of the default recipe on 1,000 of its training images: every file of a run and a
    complete card (the accuracy the full schedule reaches on all of them is checked by the slow
    test below)."""
    out = tmp_path / "run"
    run_cli("train", "--epochs", "1", "--train-images", "1000", "--out", out, "--no-progress")
    summary = json.loads((out / "summary.json").read_text())
    for name in ("best.safetensors", "best.json", "last.safetensors", "last.json", "metrics.jsonl",
                 "curves.png", "summary.json"):
        assert (out / name).is_file(), name
    card = json.loads((out / "best.json").read_text())
    assert card["arch"] == "wrn-16-1" and card["num_classes"] == 10 and card["input_size"] == 32
    assert card["dataset"]["name"] == "synthetic" and len(card["mean"]) == 3
    assert card["dataset"]["train_images"] == 1000 and card["dataset"]["train"] == 9000  # of the training part
    assert card["training"]["metrics"]["test_acc"] == summary["test_acc"]
    assert card["kind"] == "checkpoint" and card["precision"] == "fp32" and card["parent"] is None
    assert card["input"]["normalized_in_graph"] is False  # the bare network expects normalised input
    assert card["step"]["options"]["recipe_name"] == "wrn-16-1-synthetic" and "torch" in card["step"]["versions"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(len(rows)))
    model, _ = model_from_checkpoint(out / "best.safetensors")
    assert not model.training


@pytest.mark.slow
def test_default_synthetic_recipe_reaches_90_percent(tmp_path):
    """The README's promise for its main command: four epochs, about 4 CPU-minutes on one thread."""
    out = tmp_path / "run"
    proc = run_cli("train", "--out", out, "--no-progress")
    assert json.loads((out / "summary.json").read_text())["test_acc"] >= 90.0, proc.stdout
