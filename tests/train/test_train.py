"""End-to-end training runs on the built-in synthetic set, through the CLI as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, run_cli
from wrn_deploy.checkpoint import load_checkpoint, model_from_checkpoint

# Small and quick: WRN-10-1 on 3,000 training images (7,000 of the 10,000 held out for validation).
QUICK = ["--arch", "wrn-10-1", "--val-size", "7000", "--no-progress"]


def test_default_synthetic_recipe_reaches_90_percent(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("train", "--out", out, "--no-progress")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_acc"] >= 90.0, proc.stdout
    for name in ("best.safetensors", "best.json", "last.safetensors", "last.json", "metrics.jsonl",
                 "curves.png", "summary.json"):
        assert (out / name).is_file(), name
    card = json.loads((out / "best.json").read_text())
    assert card["arch"] == "wrn-16-1" and card["num_classes"] == 10 and card["input_size"] == 32
    assert card["dataset"]["name"] == "synthetic" and len(card["mean"]) == 3
    assert card["training"]["metrics"]["test_acc"] == summary["test_acc"]
    assert card["kind"] == "checkpoint" and card["precision"] == "fp32" and card["parent"] is None
    assert card["input"]["normalized_in_graph"] is False  # the bare network expects normalised input
    assert card["step"]["options"]["recipe_name"] == "wrn-16-1-synthetic" and "torch" in card["step"]["versions"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(len(rows)))
    model, _ = model_from_checkpoint(out / "best.safetensors")
    assert not model.training


def _train(out, *extra, **kw):
    return subprocess.Popen([sys.executable, "-m", "wrn_deploy", "train", "--out", str(out), *QUICK,
                             "--epochs", "3", "--deterministic", "--seed", "4", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_resume_after_sigkill_mid_epoch_gives_identical_weights(tmp_path):
    # No wall-clock limits: a busy machine makes every step slower, never wrong.
    ref = _train(tmp_path / "ref")
    assert ref.wait() == 0, ref.stderr.read()

    victim = _train(tmp_path / "cut")
    metrics = tmp_path / "cut" / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert victim.poll() is None, victim.stderr.read()
        time.sleep(0.05)
    time.sleep(1.0)  # well inside epoch 2 of 3
    assert victim.poll() is None, "the run finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert load_checkpoint(tmp_path / "cut" / "last.safetensors").train_meta["epoch"] < 2

    resumed = _train(tmp_path / "cut", "--resume")
    assert resumed.wait() == 0, resumed.stderr.read()
    a = load_file(tmp_path / "ref" / "last.safetensors")
    b = load_file(tmp_path / "cut" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() .count("\n") == 3


def test_corrupt_checkpoint_on_resume_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    before = (out / "last.safetensors").read_bytes()
    proc = run_cli("train", "--out", out, *QUICK, "--resume", check=False)
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "last.safetensors").read_bytes() == before


def test_resume_with_other_class_count_is_refused(tmp_path):
    out = tmp_path / "run"
    run_cli("train", "--out", out, *QUICK, "--epochs", "1")
    folder = tmp_path / "three"
    for split in ("train", "test"):
        for c in ("a", "b", "c"):
            (folder / split / c).mkdir(parents=True)
            for i in range(4):
                from PIL import Image

                Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / split / c / f"{i}.png")
    before = (out / "last.safetensors").read_bytes()
    proc = run_cli("train", "--out", out, "--arch", "wrn-10-1", "--data", "imagefolder",
                   "--data-dir", folder, "--val-size", "3", "--resume", "--no-progress", check=False)
    assert proc.returncode == 2 and "10 classes" in proc.stderr and "has 3" in proc.stderr
    assert (out / "last.safetensors").read_bytes() == before


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("train", "--out", blocker / "run", *QUICK, check=False)
    assert proc.returncode == 2 and "not writable" in proc.stderr and "Traceback" not in proc.stderr


def test_real_cifar_images_train_and_report_test_accuracy(cifar_dir, tmp_path):
    out = tmp_path / "cifar"
    proc = run_cli("train", "--out", out, "--arch", "wrn-10-1", "--data", "cifar10", "--data-dir",
                   cifar_dir, "--epochs", "1", "--val-size", "200", "--no-progress")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset_identity"]["test"] == 1000
    assert 0 <= summary["test_acc"] <= 100 and "test" in proc.stdout


@pytest.mark.gpu
def test_gpu_amp_channels_last_run(tmp_path):
    out = tmp_path / "gpu"
    run_cli("train", "--out", out, *QUICK, "--epochs", "1", "--device", "cuda")
    assert json.loads((out / "best.json").read_text())["training"]["epoch"] == 0
