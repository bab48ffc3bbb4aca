"""End-to-end training runs on the built-in synthetic set, through the CLI as a user runs it."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT, run_cli
from wrn_deploy.checkpoint import load_checkpoint

# Small and quick: WRN-10-1 on 3,000 training images (7,000 of the 10,000 held out for validation).
QUICK = ["--arch", "wrn-10-1", "--val-size", "7000", "--no-progress"]


def _train(out, data_dir, *extra, **kw):
    """Two deterministic epochs of WRN-10-1 on 1,000 CIFAR-10 training images (1,000 held out; the
    synthetic set would hold out 9,000, and scoring them each epoch cost most of the run)."""
    return subprocess.Popen([sys.executable, "-m", "wrn_deploy", "train", "-o", str(out), "--arch", "wrn-10-1",
                             "--data", "imagefolder", "--data-dir", str(data_dir), "--val-size", "1000",
                             "--no-progress", "--epochs", "2", "--deterministic", "--seed", "4", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_resume_after_sigkill_mid_epoch_gives_identical_weights(tmp_path, cifar_dir):
    # No wall-clock limits: a busy machine makes every step slower, never wrong.
    ref = _train(tmp_path / "ref", cifar_dir)
    victim = _train(tmp_path / "cut", cifar_dir)
    for line in victim.stdout:  # printed after epoch 1's checkpoint, as epoch 2 starts
        if line.startswith("epoch   1/2"):
            break
    else:
        raise AssertionError(f"the run ended before epoch 2: {victim.wait()} {victim.stderr.read()}")
    os.kill(victim.pid, signal.SIGKILL)  # inside epoch 2: its metrics line is not written
    victim.wait()
    assert (tmp_path / "cut" / "metrics.jsonl").read_text().count("\n") == 1
    assert load_checkpoint(tmp_path / "cut" / "last.safetensors").train_meta["epoch"] == 0
    assert ref.wait() == 0, ref.stderr.read()

    resumed = _train(tmp_path / "cut", cifar_dir, "--resume")
    assert resumed.wait() == 0, resumed.stderr.read()
    a = load_file(tmp_path / "ref" / "last.safetensors")
    b = load_file(tmp_path / "cut" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (tmp_path / "cut" / "metrics.jsonl").read_text().count("\n") == 2


def test_corrupt_checkpoint_on_resume_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    before = (out / "last.safetensors").read_bytes()
    proc = run_cli("train", "--out", out, *QUICK, "--resume", check=False)
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "last.safetensors").read_bytes() == before


def test_resume_with_other_class_count_is_refused(tmp_path, kit):
    out = tmp_path / "run"
    shutil.copytree(kit / "run", out)  # a finished WRN-10-1 run on the 10 synthetic classes
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


def test_resume_on_another_training_subset_is_refused(tmp_path, kit):
    out = tmp_path / "run"
    shutil.copytree(kit / "run", out)  # trained on 4,500 of the training images
    before = (out / "last.safetensors").read_bytes()
    proc = run_cli("train", "--out", out, "--arch", "wrn-10-1", "--train-images", "500", "--resume", "--no-progress",
                   check=False)
    assert proc.returncode == 2 and "training subset (--train-images) differ" in proc.stderr, proc.stderr
    assert (out / "last.safetensors").read_bytes() == before


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("train", "--out", blocker / "run", *QUICK, check=False)
    assert proc.returncode == 2 and "not writable" in proc.stderr and "Traceback" not in proc.stderr


def test_cifar_folder_trains_and_reports_test_accuracy(cifar_dir, tmp_path):
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
