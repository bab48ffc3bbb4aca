"""CIFAR WRN-d-k state dicts as the two PyTorch ports lay them out (docs/import.md describes the
keys, shapes and block layout), imported and checked against an independent forward pass written
here from that description, so a mapping that swaps two BatchNorms, two convolutions or the
shortcut's input gives different logits and fails."""

import json

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import run_cli
from wrn_deploy.checkpoint import model_from_checkpoint
from wrn_deploy.foreign.metadata import CIFAR10_CLASSES, PORT_MEAN, PORT_STD

DEPTH, WIDTH, CLASSES = 16, 2, 10   # 2 blocks a group; group 1 widens 16 -> 32, so every group has a shortcut
N = (DEPTH - 4) // 6


def _bn(g, n, prefix, out, stats=True):
    out[prefix + "weight"] = torch.rand(n, generator=g) * 0.5 + 0.75
    out[prefix + "bias"] = torch.randn(n, generator=g) * 0.1
    out[prefix + "running_mean"] = torch.randn(n, generator=g) * 0.2
    out[prefix + "running_var"] = torch.rand(n, generator=g) + 0.5
    if stats:
        out[prefix + "num_batches_tracked"] = torch.tensor(100)


def _conv(g, cout, cin, k):
    return torch.randn(cout, cin, k, k, generator=g) * (2 / (cin * k * k)) ** 0.5


def port_state(layout: str, width=WIDTH, n=N, seed=0) -> dict:
    """Random tensors under the port's key names and shapes (docs/import.md)."""
    g = torch.Generator().manual_seed(seed)
    widths = [16 * width, 32 * width, 64 * width]
    s: dict = {}
    xt = layout == "xternalz"
    s["conv1.weight" if xt else "conv0"] = _conv(g, 16, 3, 3)
    c = 16
    for gi, w in enumerate(widths):
        for i in range(n):
            cin = c if i == 0 else w
            p = f"block{gi + 1}.layer.{i}." if xt else f"group{gi}.block{i}."
            _bn(g, cin, p + ("bn1." if xt else "bn0."), s, stats=xt)
            s[p + ("conv1.weight" if xt else "conv0")] = _conv(g, w, cin, 3)
            _bn(g, w, p + ("bn2." if xt else "bn1."), s, stats=xt)
            s[p + ("conv2.weight" if xt else "conv1")] = _conv(g, w, w, 3)
            if cin != w:
                s[p + ("convShortcut.weight" if xt else "convdim")] = _conv(g, w, cin, 1)
        c = w
    _bn(g, c, "bn1." if xt else "bn.", s, stats=xt)
    s["fc.weight"] = torch.randn(CLASSES, c, generator=g) * 0.1
    s["fc.bias"] = torch.randn(CLASSES, generator=g) * 0.1
    return s


def reference_forward(layout: str, s: dict, x: torch.Tensor) -> torch.Tensor:
    """The ports' network, from the layout description alone: pre-activation blocks, the stride on
    the first 3x3 conv, the 1x1 shortcut (where the width changes) reading the pre-activated input."""
    xt = layout == "xternalz"

    def bn(prefix, t):
        return F.batch_norm(t, s[prefix + "running_mean"], s[prefix + "running_var"], s[prefix + "weight"],
                            s[prefix + "bias"], training=False, eps=1e-5)

    out = F.conv2d(x, s["conv1.weight" if xt else "conv0"], padding=1)
    for gi, stride in enumerate((1, 2, 2)):
        for i in range(N):
            p = f"block{gi + 1}.layer.{i}." if xt else f"group{gi}.block{i}."
            pre = F.relu(bn(p + ("bn1." if xt else "bn0."), out))
            y = F.conv2d(pre, s[p + ("conv1.weight" if xt else "conv0")], stride=stride if i == 0 else 1, padding=1)
            y = F.conv2d(F.relu(bn(p + ("bn2." if xt else "bn1."), y)), s[p + ("conv2.weight" if xt else "conv1")],
                         padding=1)
            short = p + ("convShortcut.weight" if xt else "convdim")
            out = y + (F.conv2d(pre, s[short], stride=stride if i == 0 else 1) if short in s else out)
    out = F.relu(bn("bn1." if xt else "bn.", out))
    return F.linear(F.avg_pool2d(out, 8).flatten(1), s["fc.weight"], s["fc.bias"])


def save_as_port(layout: str, state: dict, path):
    """Saved as each port's training script saves it: xternalz a dict with 'state_dict' (here with
    DataParallel's 'module.' prefix), szagoruyko a dict with 'params' beside the optimizer's state."""
    if layout == "xternalz":
        torch.save({"epoch": 200, "state_dict": {"module." + k: v for k, v in state.items()}, "best_prec1": 96.1},
                   path)
    else:
        torch.save({"params": state, "epoch": 200, "optimizer": {"state": {}, "param_groups": [{"lr": 0.0008}]}}, path)
    return path


@pytest.mark.parametrize("layout", ["xternalz", "szagoruyko"])
def test_a_port_checkpoint_imports_with_the_same_logits(layout, tmp_path):
    state = port_state(layout)
    src = save_as_port(layout, state, tmp_path / ("model_best.pth.tar" if layout == "xternalz" else "model.pt7"))
    out = tmp_path / "wrn.safetensors"
    proc = run_cli("import", src, "--from", layout, "--data", "cifar10", "-o", out)
    assert "wrn-16-2" in proc.stdout
    model, card = model_from_checkpoint(out)
    assert card.arch == "wrn-16-2" and card.classes == CIFAR10_CLASSES and card.input_size == 32
    assert card.mean == PORT_MEAN and card.std == PORT_STD and card.preprocess.resize is None
    assert card.dataset == {"name": "cifar10"} and card.training["imported"]["file"] == src.name
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(layout, state, x), rtol=1e-5, atol=1e-5)
    # the reference is sensitive to what a wrong mapping would change: swapping two BatchNorms moves the logits
    swapped = dict(state)
    a, b = ("block1.layer.1.bn1.", "block1.layer.1.bn2.") if layout == "xternalz" else ("group0.block1.bn0.",
                                                                                       "group0.block1.bn1.")
    for leaf in ("weight", "bias", "running_mean", "running_var"):
        swapped[a + leaf], swapped[b + leaf] = state[b + leaf], state[a + leaf]
    assert (reference_forward(layout, swapped, x) - reference_forward(layout, state, x)).abs().max() > 1e-3
    json_card = json.loads(out.with_suffix(".json").read_text())
    assert json_card["preprocess"] == {"resize": None, "interpolation": "bilinear"}


def test_the_claimed_architecture_is_checked(tmp_path):
    src = save_as_port("szagoruyko", port_state("szagoruyko"), tmp_path / "m.pt7")
    proc = run_cli("import", src, "--from", "szagoruyko", "--arch", "wrn-28-10", "--data", "cifar10", "-o",
                   tmp_path / "w.safetensors", check=False)
    assert proc.returncode == 2 and "holds a wrn-16-2, not the wrn-28-10" in proc.stderr
    assert not (tmp_path / "w.safetensors").exists()


def test_options_override_every_other_source(tmp_path):
    from wrn_deploy.card import Preprocess, read_card

    src = save_as_port("xternalz", port_state("xternalz", width=1, n=1), tmp_path / "m.pth.tar")
    (tmp_path / "names.txt").write_text("\n".join(f"class {i}" for i in range(10)) + "\n")
    run_cli("import", src, "--from", "xternalz", "--data", "cifar10", "--classes", tmp_path / "names.txt",
            "--input-size", "32", "--resize", "36", "--interpolation", "bicubic", "--mean", "0.5,0.5,0.5", "--std",
            "0.25,0.25,0.25", "--arch", "WRN-10-1", "-o", tmp_path / "w.safetensors")
    card = read_card(tmp_path / "w.safetensors")
    assert card.classes[3] == "class 3" and card.preprocess == Preprocess(36, "bicubic")
    assert card.mean == (0.5,) * 3 and card.std == (0.25,) * 3 and card.arch == "wrn-10-1"
    assert card.step.options["classes"] == "names.txt" and card.step.options["resize"] == 36
    run_cli("import", src, "--from", "xternalz", "--data", "cifar10", "--resize", "none", "-o",
            tmp_path / "w.safetensors", "--force")
    assert read_card(tmp_path / "w.safetensors").preprocess == Preprocess(None, "bilinear")


@pytest.mark.parametrize("layout", ["xternalz", "szagoruyko"])
def test_the_worked_examples_port_writer_is_the_imports_inverse(layout):
    """examples/port_checkpoints.py (docs/import.md's worked example) names every wrn-deploy weight as
    the port does: importing renames each name back to the weight it came from."""
    import importlib.util
    from pathlib import Path

    from wrn_deploy.arch import create_model
    from wrn_deploy.foreign.layouts import LAYOUTS, rename

    path = Path(__file__).resolve().parents[2] / "examples" / "port_checkpoints.py"
    spec = importlib.util.spec_from_file_location("port_checkpoints", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    keys = create_model(f"wrn-{DEPTH}-{WIDTH}", num_classes=CLASSES).state_dict()
    named = {k: example.port_key(k, layout, N) for k in keys}
    dropped = {k for k, v in named.items() if v is None}
    assert dropped == ({k for k in keys if k.endswith("num_batches_tracked")} if layout == "szagoruyko" else set())
    assert {rename(v, LAYOUTS[layout], N): k for k, v in named.items() if v is not None} == \
        {k: k for k in keys if k not in dropped}
    assert set(port_state(layout)) == {v for v in named.values() if v is not None}
