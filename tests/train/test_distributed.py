"""torchrun with 2 gloo processes, checked two ways.

1. Exactly: DDP must equal one process that runs each half of the global batch through the model
   separately (BatchNorm sees only its half, as on each rank) and averages the two gradients.
2. Against one process with the same global batch of 128: the ranks see the same images, crops and
   flips, but BatchNorm normalises each half on its own (PyTorch has no SyncBatchNorm on the CPU), so
   the runs agree within a measured tolerance, not bitwise.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from tests.conftest import ROOT
from wrn_deploy.arch import create_model
from wrn_deploy.arch.normalize import Normalized
from wrn_deploy.data import load_dataset
from wrn_deploy.data.batches import tensor_batches
from wrn_deploy.data.load import fewer_training_images
from wrn_deploy.train.loop import epoch_seed

SEED, LR, VAL, IMAGES = 1, 0.01, 1000, 1500  # 11 steps of 128
ARGS = ["--arch", "wrn-10-1", "--epochs", "1", "--val-size", str(VAL), "--train-images", str(IMAGES),
        "--seed", str(SEED), "--lr", str(LR), "--no-progress", "--deterministic"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "wrn_deploy", "train", *ARGS]
    subprocess.run([*cmd, "--out", str(root / "one")], cwd=ROOT, check=True, capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m"]
    (root / "tmp").mkdir()  # torchrun's log folders go there, not into the machine's /tmp
    subprocess.run([*torchrun, "wrn_deploy", "train", *ARGS, "--out", str(root / "two")], cwd=ROOT,
                   check=True, capture_output=True, env=dict(os.environ, TMPDIR=str(root / "tmp")))
    return root


def _params(path) -> dict:
    model = create_model("wrn-10-1")
    names = {"model." + k for k, _ in model.named_parameters()}
    return {k: v for k, v in load_file(path).items() if k in names}


def _two_halves_in_one_process() -> dict:
    # torchrun gives each process one thread; CPU kernels round differently with two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _two_halves()
    finally:
        torch.set_num_threads(threads)


def _two_halves() -> dict:
    data = fewer_training_images(load_dataset("synthetic", val_size=VAL, progress=False), IMAGES, 0)
    torch.manual_seed(SEED)
    model = create_model("wrn-10-1", 10)
    net = Normalized(model, data.mean, data.std).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
    kw = dict(shuffle=True, augment=True, seed=epoch_seed(SEED, 0), world=2, drop_last=True)
    halves = [tensor_batches(data.train, 128, "cpu", rank=r, **kw) for r in (0, 1)]
    for (x0, y0), (x1, y1) in zip(*halves):
        opt.zero_grad()
        for x, y in ((x0, y0), (x1, y1)):
            (F.cross_entropy(net(x), y) / 2).backward()
        opt.step()
    return {"model." + k: v.detach() for k, v in model.named_parameters()}


def _rel(a: dict, b: dict, base: dict | None = None) -> float:
    base = base or {k: torch.zeros_like(v) for k, v in a.items()}
    num = sum(((a[k] - base[k]) - (b[k] - base[k])).pow(2).sum() for k in a)
    den = sum((a[k] - base[k]).pow(2).sum() for k in a)
    return (num / den).sqrt().item()


def test_ddp_equals_gradient_averaging_over_the_two_halves(runs):
    ddp = _params(runs / "two" / "last.safetensors")
    ref = _two_halves_in_one_process()
    assert ddp.keys() == ref.keys()
    torch.manual_seed(SEED)
    init = {"model." + k: v.detach() for k, v in create_model("wrn-10-1").named_parameters()}
    # Measured: identical to the last bit; the bound only allows for another all-reduce order.
    assert _rel(ref, ddp, init) < 1e-5


def test_two_processes_match_one_with_the_same_global_batch(runs):
    one, two = _params(runs / "one" / "last.safetensors"), _params(runs / "two" / "last.safetensors")
    torch.manual_seed(SEED)
    init = {"model." + k: v.detach() for k, v in create_model("wrn-10-1").named_parameters()}
    # Measured on this machine: the weight updates differ by 13% (per-half BatchNorm), the
    # training loss by under 0.001; the tolerances leave room for float noise.
    assert _rel(one, two, init) < 0.25
    ra = json.loads((runs / "one" / "metrics.jsonl").read_text())
    rb = json.loads((runs / "two" / "metrics.jsonl").read_text())
    assert abs(ra["train_loss"] - rb["train_loss"]) < 0.01
    assert abs(ra["val_acc"] - rb["val_acc"]) < 2.0
