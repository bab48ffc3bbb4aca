"""The bad-input corpus: what a careless user or an attacker gives every command.

Each case sets up files, runs the CLI in this process, and asserts: a non-zero exit, exactly one
line on stderr that is a user error (no traceback, no "internal error"), a fragment of the expected
sentence, and that every file that existed before is byte-identical afterwards, with no new
artifact or temporary file left behind.
"""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

import wrn_deploy.cli
from tests.conftest import ROOT, run_cli
from tests.engine import fake_tensorrt

# -- shared artifacts, made once --------------------------------------------------------------------


@pytest.fixture(scope="module")
def art(kit):
    """The session's model kit: a trained WRN-10-1 (synthetic) in run/, its FP32, FP16 and INT8 ONNX
    (m.onnx, h.onnx, q.onnx), a key pair (k.pem, k.pub)."""
    return kit


@pytest.fixture(scope="module")
def python_repo(art, tmp_path_factory):
    """A repository that ``wrn-deploy triton`` wrote for the kit's FP32 ONNX (Python backend), made once
    per module: cases copy it instead of writing their own."""
    root = tmp_path_factory.mktemp("repo-template")
    shutil.copy(art / "m.onnx", root / "m.onnx")
    run_cli("triton", root / "m.onnx", "-o", root / "repo", "--name", "m", "--backend", "python", "--max-batch", "16",
            "--no-check-load")
    return root / "repo"


class Ctx:
    def __init__(self, tmp: Path, art: Path, monkeypatch, template: Path | None = None):
        self.tmp, self.art, self.mp, self.template = tmp, art, monkeypatch, template

    def copy(self, name: str, as_name: str | None = None) -> Path:
        """A copy of a shared artifact (and the JSON card beside a checkpoint) in this case's folder."""
        src = self.art / name
        dst = self.tmp / (as_name or Path(name).name)
        shutil.copy(src, dst)
        if src.suffix == ".safetensors" and src.with_suffix(".json").exists():
            shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
        origin = self.tmp / "run" / "best.safetensors"
        if src.suffix == ".onnx" and not origin.exists():
            # cards name their source checkpoint relative to the artifact: move it along, as a user would
            origin.parent.mkdir(exist_ok=True)
            shutil.copy(self.art / "run" / "best.safetensors", origin)
        return dst

    def ckpt(self) -> Path:
        return self.copy("run/best.safetensors", "c.safetensors")

    def onnx_with_card(self, edit) -> Path:
        """The FP32 ONNX with its card JSON changed by ``edit(dict)`` (or replaced by a string)."""
        path = self.copy("m.onnx", "edited.onnx")
        model = onnx.load(str(path))
        prop = next(p for p in model.metadata_props if p.key == "wrn_deploy.card")
        card = json.loads(prop.value)
        new = edit(card)
        prop.value = new if isinstance(new, str) else json.dumps(card)
        onnx.save(model, str(path))
        return path

    def folder(self, name="data", classes="abc", n=4, size=32) -> Path:
        from PIL import Image

        root = self.tmp / name
        for split in ("train", "test"):
            for c in classes:
                (root / split / c).mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    Image.new("RGB", (size, size), (i * 40, 9, 9)).save(root / split / c / f"{i}.png")
        return root

    def plan(self, sign: bool = False) -> Path:
        """A plan built by the TensorRT stand-in (the fake is active for this case)."""
        from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine

        self.fake_trt()
        build_engine(self.copy("m.onnx"), self.tmp / "m.plan", BuildOptions(opt_batch=8, max_batch=16),
                     sign_key=self.art / "k.pem" if sign else None)
        return self.tmp / "m.plan"

    def fake_trt(self) -> None:
        import torch

        self.mp.setitem(sys.modules, "tensorrt", fake_tensorrt.as_module())
        self.mp.setattr(torch.cuda, "is_available", lambda: True)
        self.mp.setattr(torch.cuda, "get_device_name", lambda *a: "stand-in H100")
        self.mp.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))

    def repo(self, artifact: str | Path = "m.onnx", backend: str = "python") -> Path:
        """A model repository (model ``m``) written by ``wrn-deploy triton`` in this case's folder."""
        if (artifact, backend) == ("m.onnx", "python") and self.template is not None:
            shutil.copytree(self.template, self.tmp / "repo", symlinks=True)
            return self.tmp / "repo"
        src = self.copy(artifact) if isinstance(artifact, str) else artifact
        run_cli("triton", src, "-o", self.tmp / "repo", "--name", "m", "--backend", backend, "--max-batch", "16",
                "--no-check-load")
        return self.tmp / "repo"

    def mount(self, name: str, options: str) -> Path:
        """A tmpfs of our own (full disk, read-only folder), or skip where mounting is not allowed."""
        where = self.tmp / name
        where.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        self.mounts.append(where)
        return where


def _truncated_jpeg(ctx):
    root = ctx.folder()
    from PIL import Image

    bad = root / "train" / "a" / "bad.jpg"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:200])
    return root


def _text_as_jpeg(ctx):
    root = ctx.folder()
    (root / "train" / "b" / "note.jpg").write_text("this is not an image\n")
    return root


def _corrupt_png(ctx):
    root = ctx.folder()
    png = root / "test" / "c" / "0.png"
    data = bytearray(png.read_bytes())
    data[40:60] = b"\x00" * 20
    png.write_bytes(bytes(data))
    return root


def _bomb_png(ctx):
    from PIL import Image

    root = ctx.folder()
    Image.new("1", (14000, 14000)).save(root / "train" / "a" / "bomb.png")  # 196 Mpx, tiny file
    return root


def _loop(ctx):
    root = ctx.folder()
    os.symlink("..", root / "train" / "a" / "loop")
    return root


def _escape_link(ctx):
    root = ctx.folder()
    secret = ctx.tmp / "outside.png"
    shutil.copy(root / "train" / "a" / "0.png", secret)
    os.symlink(secret, root / "train" / "b" / "x.png")
    return root


def _one_big_image(ctx):
    from PIL import Image

    root = ctx.folder()
    Image.new("RGB", (300, 300)).save(root / "train" / "a" / "0.png")  # sorted first
    return root


def _renamed_run(ctx):
    root = ctx.folder(classes="abc")
    run_cli("train", "--arch", "wrn-10-1", "--data", "imagefolder", "--data-dir", root, "--val-size", "3",
            "--batch-size", "4", "--epochs", "1", "--out", ctx.tmp / "run", "--no-progress")
    (root / "train" / "c").rename(root / "train" / "z")
    (root / "test" / "c").rename(root / "test" / "z")
    return root


def _manifest(ctx, edit):
    plan = ctx.plan()
    man = Path(str(plan) + ".json")
    data = edit(json.loads(man.read_text()))
    man.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return plan


def _tamper_signed(ctx):
    """Change the plan and recompute its manifest hash, leaving the (now wrong) signature beside it."""
    import hashlib

    plan = ctx.plan(sign=True)
    data = bytearray(plan.read_bytes())
    data[-5] ^= 1
    plan.write_bytes(bytes(data))
    man = Path(str(plan) + ".json")
    m = json.loads(man.read_text())
    m["plan_sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    man.write_text(json.dumps(m))
    return plan


def _full_disk(ctx):
    out = ctx.mount("full", "size=16k")
    (out / "filler").write_bytes(b"\0" * 8192)
    return out


def _read_only(ctx):
    return ctx.mount("ro", "ro,size=64k")


def _synthetic_names_folder(ctx):
    """The synthetic set's class names as folders: ImageFolder sorts them, so the order differs."""
    from wrn_deploy.data.synthetic import CLASSES

    return ctx.folder(classes=CLASSES, n=2)


# -- import: foreign checkpoints -----------------------------------------------------------------------
def _port(c, layout="szagoruyko", edit=None, name="m.pt7") -> Path:
    """A WRN-10-1 as the CIFAR port ``layout`` saves it, with ``edit(state)`` applied first."""
    import torch

    from tests.foreign.test_ports import port_state

    state = port_state(layout, width=1, n=1)
    if edit:
        edit(state)
    torch.save({"params" if layout == "szagoruyko" else "state_dict": state}, c.tmp / name)
    return c.tmp / name


def _meliketoy(c) -> Path:
    """meliketoy/wide-resnet.pytorch's keys: conv biases, layerN.i, linear (docs/import.md)."""
    import torch

    state = {"conv1.weight": torch.zeros(16, 3, 3, 3), "conv1.bias": torch.zeros(16),
             "layer1.0.conv1.weight": torch.zeros(16, 16, 3, 3), "layer1.0.conv1.bias": torch.zeros(16),
             "linear.weight": torch.zeros(10, 64), "linear.bias": torch.zeros(10)}
    torch.save(state, c.tmp / "wide-resnet-28x10.pth")
    return c.tmp / "wide-resnet-28x10.pth"


def _resnet_shapes(c, inner=128, blocks=(3, 4, 6, 3)) -> Path:
    """Only what tells a torchvision/timm ResNet apart (blocks per stage, the first block's widths),
    as tiny tensors: enough for the checks that come before the weights are read."""
    import torch

    state = {f"layer{g + 1}.{i}.conv1.weight": torch.zeros(1) for g, n in enumerate(blocks) for i in range(n)}
    state.update({"layer1.0.conv2.weight": torch.zeros(inner, 1, 1, 1), "layer1.0.conv3.weight":
                  torch.zeros(256, 1, 1, 1), "fc.weight": torch.zeros(1000, 2048)})
    torch.save(state, c.tmp / "resnet.pth")
    return c.tmp / "resnet.pth"


def _evil_pickle(c, protocol=2) -> Path:
    """A pickle whose loading would run a command that creates a file (the case checks none appears)."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {c.tmp / 'pwned'}",))

    (c.tmp / "evil.pth").write_bytes(pickle.dumps({"state_dict": Payload()}, protocol=protocol))
    return c.tmp / "evil.pth"


def _whole_module(c) -> Path:
    import torch

    torch.save({"net": torch.nn.Linear(2, 2), "acc": 90.0}, c.tmp / "net.t7")
    return c.tmp / "net.t7"


def _drop(key):
    return lambda s: s.pop(key)


def _imp(src, *more, out="w.safetensors"):
    """``import`` of ``src(c)`` as a szagoruyko CIFAR-10 checkpoint with ``more`` (callables are given c)."""
    return lambda c: ["import", src(c), "--from", "szagoruyko", "--data", "cifar10", "-o", c.tmp / out,
                      *(m(c) if callable(m) else m for m in more)]


IMPORT_CASES = {
    "import missing source": (lambda c: ["import", c.tmp / "no.pth", "--from", "timm", "-o", c.tmp / "w.safetensors"],
                              "does not exist"),
    "import text file": (lambda c: [(c.tmp / "notes.pth").write_text("not a checkpoint\n") and "import",
                                    c.tmp / "notes.pth", "--from", "torchvision", "-o", c.tmp / "w.safetensors"],
                         "not a PyTorch checkpoint"),
    "import empty file": (lambda c: [(c.tmp / "e.pth").write_bytes(b"") or "import", c.tmp / "e.pth", "--from",
                                     "torchvision", "-o", c.tmp / "w.safetensors"], "not a PyTorch checkpoint"),
    "import corrupt safetensors": (lambda c: [(c.tmp / "x.safetensors").write_bytes(b"\x10" + b"\0" * 7 + b"{{")
                                              and "import", c.tmp / "x.safetensors", "--from", "timm", "-o",
                                              c.tmp / "w.safetensors"], "corrupt or not a safetensors"),
    "import pickled code": (lambda c: ["import", _evil_pickle(c), "--from", "xternalz", "-o", c.tmp / "w.safetensors"],
                            "stores Python objects.*pickles posix.system.*never unpickles"),
    "import pickled code, protocol 4": (lambda c: ["import", _evil_pickle(c, 4), "--from", "xternalz", "-o",
                                                   c.tmp / "w.safetensors"], "not a PyTorch checkpoint that loads"),
    "import pickled module": (lambda c: ["import", _whole_module(c), "--from", "xternalz", "-o",
                                         c.tmp / "w.safetensors"], "pickles torch.nn.modules.linear.Linear"),
    "import no state dict": (lambda c: [__import__("torch").save({"epoch": 3}, c.tmp / "e.pth") or "import",
                                        c.tmp / "e.pth", "--from", "xternalz", "-o", c.tmp / "w.safetensors"],
                             "holds no state dict"),
    "import wrn-deploy's own checkpoint": (lambda c: ["import", c.ckpt(), "--from", "torchvision", "-o",
                                                      c.tmp / "w.safetensors"], "match no WRN layout"),
    "import meliketoy": (lambda c: ["import", _meliketoy(c), "--from", "xternalz", "-o", c.tmp / "w.safetensors"],
                         "meliketoy.*different network"),
    "import wrong layout named": (lambda c: ["import", _port(c), "--from", "xternalz", "-o", c.tmp / "w.safetensors"],
                                  "laid out as szagoruyko's WRN.*--from szagoruyko"),
    "import port as torchvision": (lambda c: ["import", _port(c), "--from", "torchvision", "-o",
                                              c.tmp / "w.safetensors"], "pass --from szagoruyko"),
    "import torchvision as port": (lambda c: ["import", _resnet_shapes(c), "--from", "szagoruyko", "-o",
                                              c.tmp / "w.safetensors"], r"torchvision or timm.*--from torchvision"),
    "import plain resnet50": (lambda c: ["import", _resnet_shapes(c, inner=64), "--from", "torchvision", "-o",
                                         c.tmp / "w.safetensors"], "plain ResNet-50, not a WRN-50-2"),
    "import resnet152": (lambda c: ["import", _resnet_shapes(c, blocks=(3, 8, 36, 3)), "--from", "torchvision", "-o",
                                    c.tmp / "w.safetensors"], "3/8/36/3 blocks"),
    "import wrong weights name": (lambda c: ["import", _resnet_shapes(c), "--from", "torchvision", "--weights",
                                             "IMAGENET1K_V3", "-o", c.tmp / "w.safetensors"],
                                  "has IMAGENET1K_V1, IMAGENET1K_V2"),
    "import wrong timm tag": (lambda c: ["import", _resnet_shapes(c), "--from", "timm", "--weights", "in22k", "-o",
                                         c.tmp / "w.safetensors"], "pretrained tags .*racm_in1k"),
    "import weights of a port": (_imp(lambda c: _port(c), "--weights", "IMAGENET1K_V1"), "--from szagoruyko has none"),
    "import no class names": (lambda c: ["import", _port(c), "--from", "szagoruyko", "-o", c.tmp / "w.safetensors"],
                              "needs the model's class names"),
    "import arch claim": (_imp(lambda c: _port(c), "--arch", "wrn-28-10"), "holds a wrn-10-1, not the wrn-28-10"),
    "import bad arch": (_imp(lambda c: _port(c), "--arch", "wrn-27-1"), "valid forms"),
    "import conv bias": (_imp(lambda c: _port(c, edit=lambda s: s.update(
        {"group0.block0.conv0.bias": __import__("torch").zeros(16)}))), "convolution bias: the paper's WRN has none"),
    "import missing key": (_imp(lambda c: _port(c, edit=_drop("group1.block0.bn1.running_var"))),
                           r"blocks\.1\.bns\.1\.running_var is missing"),
    "import missing shortcut": (_imp(lambda c: _port(c, edit=_drop("group2.block0.convdim"))),
                                r"blocks\.2\.shortcut\.weight is missing"),
    "import shape mismatch": (_imp(lambda c: _port(c, edit=lambda s: s.update(
        {"group1.block0.conv1": __import__("torch").zeros(32, 32, 1, 1)}))), r"has shape \(32, 32, 1, 1\)"),
    "import uneven groups": (_imp(lambda c: _port(c, edit=lambda s: s.update(
        {"group2.block1.conv0": __import__("torch").zeros(64, 64, 3, 3)}))), "groups hold 1/1/2 blocks"),
    "import nan weights": (_imp(lambda c: _port(c, edit=lambda s: s["fc.weight"].fill_(float("nan")))),
                           "NaN or infinite"),
    "import classes count": (_imp(lambda c: _port(c), "--classes", lambda c: _text(c, "three.txt", "a\nb\nc\n")),
                             "10 outputs, but 3 class names"),
    "import repeated class": (_imp(lambda c: _port(c), "--classes", lambda c: _text(c, "ten.txt", "a\n" * 10)),
                              "have the same name 'a'"),
    "import classes not text": (_imp(lambda c: _port(c), "--classes", lambda c: _text(c, "b.txt", b"\xff\xfe\x00")),
                                "not UTF-8"),
    "import resize below crop": (_imp(lambda c: _port(c), "--resize", "16"), "smaller than the input size 32"),
    "import resize garbage": (_imp(lambda c: _port(c), "--resize", "big"), "whole number of pixels"),
    "import mean garbage": (_imp(lambda c: _port(c), "--mean", "0.5,0.5"), "three finite numbers"),
    "import std zero": (_imp(lambda c: _port(c), "--std", "0.2,0,0.2"), "three finite positive numbers"),
    "import not safetensors": (_imp(lambda c: _port(c), out="w.pth"), "is a .safetensors file"),
    "import onto source": (lambda c: ["import", _port(c, name="m.safetensors"), "--from", "szagoruyko", "--data",
                                      "cifar10", "-o", c.tmp / "m.safetensors"], "is the input"),
    "import existing output": (_imp(lambda c: [(c.tmp / "w.safetensors").write_text("x"), _port(c)][1]), "exists"),
    "import existing card copy": (_imp(lambda c: [(c.tmp / "w.json").write_text("{}"), _port(c)][1]), "w.json exists"),
    "import unknown from": (lambda c: ["import", _port(c), "--from", "keras", "-o", c.tmp / "w.safetensors"],
                            "'keras' is not one of"),
}


def _text(c, name, content):
    path = c.tmp / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


# name -> (setup(ctx) -> argv, fragment of the one-line error)
CASES = {
    # train
    "train device": (lambda c: ["train", "--device", "tpu"], "use auto, cpu, cuda"),
    "train batch too big": (lambda c: ["train", "--batch-size", "100000", "--out", c.tmp / "r"], "larger than"),
    "train epochs 0": (lambda c: ["train", "--epochs", "0"], "epochs"),
    "train images": (lambda c: ["train", "--train-images", "9001", "--out", c.tmp / "r"], "the training part has 9000"),
    "train arch": (lambda c: ["train", "--arch", "wrn-27-10"], "valid forms"),
    "train width exhausts memory": (lambda c: ["train", "--arch", "wrn-10-100000000", "--out", c.tmp / "r"],
                                    "memory"),
    "train dataset": (lambda c: ["train", "--data", "mnist"], "synthetic"),
    "train data-dir typo": (lambda c: ["train", "--data", "cifar10", "--data-dir", c.tmp / "nope", "--out",
                                       c.tmp / "r"], "does not exist"),
    "train resume nothing": (lambda c: ["train", "--resume", "--out", c.tmp / "r"], "no checkpoint"),
    "train resume and force": (lambda c: ["train", "--resume", "--force"], "choose one"),
    "train over finished run": (lambda c: [shutil.copytree(c.art / "run", c.tmp / "run") and "train",
                                           "--arch", "wrn-10-1", "--out", c.tmp / "run"], "already holds a run"),
    "train out is a file": (lambda c: [(c.tmp / "f").write_text("x") and "train", "--out", c.tmp / "f"],
                            "is a file"),
    "train out under a file": (lambda c: [(c.tmp / "f").write_text("x") and "train", "--out", c.tmp / "f" / "r"],
                               "not writable"),
    "train diverges": (lambda c: ["train", "--arch", "wrn-10-1", "--lr", "1000000", "--val-size", "9700",
                                  "--out", c.tmp / "r", "--no-progress"], "diverged"),
    "train resume renamed classes": (lambda c: ["train", "--arch", "wrn-10-1", "--data", "imagefolder", "--data-dir",
                                                _renamed_run(c), "--val-size", "3", "--batch-size", "4", "--resume",
                                                "--out", c.tmp / "run"], "class 2"),
    "train truncated jpeg": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _truncated_jpeg(c), "--out",
                                        c.tmp / "r"], "bad.jpg"),
    "train text as jpeg": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _text_as_jpeg(c), "--out",
                                      c.tmp / "r"], "note.jpg"),
    "train corrupt png": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _corrupt_png(c), "--out",
                                     c.tmp / "r"], "0.png"),
    "train decompression bomb": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _bomb_png(c), "--out",
                                            c.tmp / "r"], "decompression-bomb"),
    "train symlink loop": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _loop(c), "--out",
                                      c.tmp / "r"], "real folders"),
    "train symlink escapes": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _escape_link(c), "--out",
                                         c.tmp / "r"], "outside the dataset"),
    "train one big image": (lambda c: ["train", "--data", "imagefolder", "--data-dir", _one_big_image(c), "--out",
                                       c.tmp / "r"], "very different sizes"),
    "train no split folders": (lambda c: [(c.tmp / "d").mkdir() or "train", "--data", "imagefolder", "--data-dir",
                                          c.tmp / "d", "--out", c.tmp / "r"], "train/<class>"),
    # export
    "export onto checkpoint": (lambda c: ["export", c.ckpt(), "-o", c.tmp / "c.safetensors"], "is the input"),
    "export onto card json": (lambda c: ["export", c.ckpt(), "-o", c.tmp / "c.json"], "is the input"),
    "export onto symlink": (lambda c: [os.symlink(c.ckpt(), c.tmp / "l.onnx") or "export", c.tmp / "c.safetensors",
                                       "-o", c.tmp / "l.onnx"], "is the input"),
    "export onto hard link": (lambda c: [os.link(c.ckpt(), c.tmp / "h.onnx") or "export", c.tmp / "c.safetensors",
                                         "-o", c.tmp / "h.onnx"], "is the input"),
    "export existing output": (lambda c: ["export", c.ckpt(), "-o", c.copy("m.onnx")], "exists"),
    "export existing report": (lambda c: [(c.tmp / "new.report.json").write_text("{}") and "export", c.ckpt(), "-o",
                                          c.tmp / "new.onnx"], "exists"),
    "export missing checkpoint": (lambda c: ["export", c.tmp / "no.safetensors", "-o", c.tmp / "m.onnx"],
                                  "does not exist"),
    "export corrupt checkpoint": (lambda c: [(c.tmp / "x.safetensors").write_bytes(b"\x10" + b"\0" * 7 + b"{{")
                                             and "export", c.tmp / "x.safetensors", "-o", c.tmp / "m.onnx"], "corrupt"),
    "export truncated checkpoint": (lambda c: [c.ckpt().write_bytes((c.art / "run/best.safetensors").read_bytes()[:999])
                                               and "export", c.tmp / "c.safetensors", "-o", c.tmp / "m.onnx"],
                                    "corrupt"),
    "export opset": (lambda c: ["export", c.ckpt(), "-o", c.tmp / "m.onnx", "--opset", "11"], "opset 11"),
    "export missing folder": (lambda c: ["export", c.ckpt(), "-o", c.tmp / "no" / "m.onnx"], "does not exist"),
    "export fp16-io alone": (lambda c: ["export", c.ckpt(), "-o", c.tmp / "m.onnx", "--fp16-io"], "--fp16"),
    "export other classes": (lambda c: ["export", c.ckpt(), "-o", c.tmp / "m.onnx", "--data", "imagefolder",
                                        "--data-dir", c.folder()], "classes"),
    "export wrong suffix": (lambda c: [(c.tmp / "c.pt").write_bytes(b"x") and "export", c.tmp / "c.pt", "-o",
                                       c.tmp / "m.onnx"], "does not exist|corrupt"),
    "export full disk": (lambda c: ["export", c.ckpt(), "-o", _full_disk(c) / "m.onnx", "--no-verify"],
                         "No space left"),
    "export read-only folder": (lambda c: ["export", c.ckpt(), "-o", _read_only(c) / "m.onnx"], "not writable"),
    # cards
    "card not json": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: "{nope")], "not valid JSON"),
    "card json list": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: "[1, 2]")], "not a JSON object"),
    "card classes type": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(classes="abc"))],
                          "num_classes|classes"),
    "card classes numbers": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(
        classes=list(range(10))))], "classes"),
    "card mean": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(mean=[0.5]))], "mean and std"),
    "card std zero": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(std=[0, 0, 0]))],
                      "std positive"),
    "card input size": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(input_size=-32))],
                        "input_size"),
    "card input size text": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(input_size="x"))],
                             "malformed"),
    "card dropout": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(dropout=5))], "dropout"),
    "card precision": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(precision="int4"))], "int4"),
    "card missing key": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.pop("arch") and None)],
                         "malformed"),
    "card old format": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(format="x/1"))],
                        "card format"),
    "card bad json in build": (lambda c: ["build", c.onnx_with_card(lambda d: "{nope"), "-o", c.tmp / "m.plan"],
                               "not valid JSON"),
    "card bad checkpoint card": (lambda c: [c.copy("run/best.json", "c.json") and _bad_ckpt_card(c) or "export",
                                            c.tmp / "bad.safetensors", "-o", c.tmp / "m.onnx"], "classes"),
    # eval
    "eval nothing": (lambda c: ["eval"], "give a candidate"),
    "eval missing onnx": (lambda c: ["eval", "--onnx", c.tmp / "no.onnx"], "does not exist"),
    "eval random onnx": (lambda c: [(c.tmp / "r.onnx").write_bytes(os.urandom(500)) and "eval", "--onnx",
                                    c.tmp / "r.onnx"], "not a readable ONNX"),
    "eval truncated onnx": (lambda c: [(c.tmp / "t.onnx").write_bytes((c.art / "m.onnx").read_bytes()[:5000])
                                       and "eval", "--onnx", c.tmp / "t.onnx"], "ONNX"),
    "eval external data": (lambda c: ["eval", "--onnx", _external(c)], "external data"),
    "eval openvino on a checkpoint": (lambda c: ["eval", "--checkpoint", c.art / "run" / "best.safetensors",
                                                 "--runtime", "openvino"], "runs --onnx candidates only"),
    "eval precision hint for onnxruntime": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--precision-hint", "bf16"],
                                            "applies to --runtime openvino"),
    "eval runtime unknown": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--runtime", "tvm"], "tvm"),
    "bench openvino through triton": (lambda c: ["bench", c.copy("m.onnx"), "--runtime", "openvino"],
                                      "pass --no-triton"),
    "eval report onto card": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--reference", c.ckpt(), "--report",
                                         c.tmp / "c", "--force"], "is the input"),
    "eval report exists": (lambda c: [(c.tmp / "m.onnx.eval.json").write_text("{}") and "eval", "--onnx",
                                      c.copy("m.onnx")], "exists"),
    "eval classes differ": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--data", "imagefolder", "--data-dir",
                                       c.folder(classes="abcdefghij")], "class 0"),
    "eval classes reordered": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--data", "imagefolder", "--data-dir",
                                          _synthetic_names_folder(c)], "labels would shift"),
    "eval own calibration split": (lambda c: ["eval", "--onnx", c.copy("q.onnx"), "--split", "val"],
                                   "calibrated this model"),
    "eval reference other arch": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--reference", _other_arch(c)],
                                  "does not match"),
    "eval reference missing": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--reference",
                                          c.tmp / "no.safetensors"], "does not exist"),
    "eval reference an export": (lambda c: ["eval", "--onnx", c.copy("q.onnx"), "--reference", c.copy("m.onnx")],
                                 "the reference is the PyTorch FP32 checkpoint"),
    "eval one candidate twice": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--onnx", c.tmp / "." / "m.onnx"],
                                 "given twice"),
    "eval origin moved": (lambda c: ["eval", "--onnx", _orphan(c)], "pass --reference"),
    "eval device": (lambda c: ["eval", "--checkpoint", c.ckpt(), "--device", "tpu"], "tpu"),
    "eval batch 0": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--batch", "0"], "batch"),
    "eval limit 0": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--limit", "0"], "limit"),
    "eval provider": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--provider", "cuda"], "'gpu' extra"),
    "eval corrupt checkpoint": (lambda c: [(c.tmp / "x.safetensors").write_bytes(b"\1\0\0\0\0\0\0\0{") and "eval",
                                           "--checkpoint", c.tmp / "x.safetensors", "--reference", c.ckpt()],
                                "corrupt"),
    "eval unknown suffix": (lambda c: ["eval", "--onnx", c.tmp / "m.txt"], "unknown artifact type"),
    "eval report read-only": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--report", _read_only(c) / "r"],
                              "not writable"),
    "eval input shape": (lambda c: ["eval", "--onnx", _fixed_64(c), "--limit", "8"], "ONNX Runtime"),
    # quantize
    "quantize onto input": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "m.onnx"], "is the input"),
    "quantize existing": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.copy("q.onnx")], "exists"),
    "quantize static batch": (lambda c: [run_cli("export", c.ckpt(), "-o", c.tmp / "s.onnx", "--no-verify", "--static-batch",
                                                 "4") and "quantize", c.tmp / "s.onnx", "-o", c.tmp / "q2.onnx"],
                              "takes batches of exactly 4"),
    "quantize fp16": (lambda c: ["quantize", c.copy("h.onnx"), "-o", c.tmp / "q2.onnx"], "fp16"),
    "quantize openvino with a placement": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--target",
                                                      "openvino", "--placement", "conv"], "places its pairs where NNCF"),
    "quantize cpu with a remainder precision": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx",
                                                           "--target", "cpu", "--rest", "fp16"], "--rest fp16 applies to"),
    "quantize openvino by modelopt": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--target",
                                                 "openvino", "--quantizer", "modelopt", "--method", "minmax"],
                                      "takes no --target cpu or openvino"),
    "quantize openvino int8 again": (lambda c: ["quantize", c.copy("q.onnx"), "-o", c.tmp / "q2.onnx", "--target",
                                                "openvino"], "quantize the FP32 ONNX export"),
    "quantize not onnx": (lambda c: [(c.tmp / "x.onnx").write_bytes(os.urandom(300)) and "quantize",
                                     c.tmp / "x.onnx", "-o", c.tmp / "q2.onnx"], "ONNX"),
    "quantize tiny calib": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--calib-size", "4"],
                            "x>=16"),
    "quantize leaves one": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--calib-size", "999",
                                       "--calib-dir", c.tmp / "cal"], "guard"),
    "quantize guard too small": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--calib-size",
                                            "700", "--calib-dir", c.tmp / "cal"], "needs at least 400"),
    "quantize other classes": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--data",
                                          "imagefolder", "--data-dir", c.folder()], "classes"),
    "quantize missing": (lambda c: ["quantize", c.tmp / "no.onnx", "-o", c.tmp / "q2.onnx"], "does not exist"),
    "quantize a checkpoint": (lambda c: ["quantize", c.ckpt(), "-o", c.tmp / "q2.onnx"], "checkpoint"),
    "quantize bad cache": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--calib-dir",
                                      _bad_cache(c), "--calib-size", "128"], "not valid JSON"),
    # build (stand-in TensorRT where it gets that far)
    "build onto input": (lambda c: ["build", c.copy("m.onnx"), "-o", c.tmp / "m.onnx"], "is the input"),
    "build existing plan": (lambda c: [c.plan() and "build", c.tmp / "m.onnx", "-o", c.tmp / "m.plan"], "exists"),
    "build bad key": (lambda c: [c.fake_trt() or (c.tmp / "k.pem").write_text("nope") and "build", c.copy("m.onnx"),
                                 "-o", c.tmp / "n.plan", "--sign", c.tmp / "k.pem"], "private key"),
    "build batch profile": (lambda c: [c.fake_trt() or "build", c.copy("m.onnx"), "-o", c.tmp / "n.plan",
                                       "--min-batch", "8", "--max-batch", "4"], "min <= opt <= max"),
    "build cache onto input": (lambda c: ["build", c.copy("m.onnx"), "-o", c.tmp / "n.plan", "--timing-cache",
                                          c.tmp / "m.onnx"], "is the input"),
    "build missing onnx": (lambda c: ["build", c.tmp / "no.onnx", "-o", c.tmp / "n.plan"], "does not exist"),
    "build a checkpoint": (lambda c: ["build", c.ckpt(), "-o", c.tmp / "n.plan"], "checkpoint"),
    "build without tensorrt": (lambda c: ["build", c.copy("m.onnx"), "-o", c.tmp / "n.plan"], "'trt' extra"),
    # plans and trust (stand-in TensorRT)
    "plan tampered signed": (lambda c: ["eval", "--engine", _tamper_signed(c)], "signed, but no key"),
    "plan tampered key": (lambda c: ["eval", "--engine", _tamper_signed(c), "--verify-key", c.art / "k.pub"],
                          "does not verify"),
    "plan modified": (lambda c: [_flip(c.plan()) and "eval", "--engine", c.tmp / "m.plan"], "modified"),
    "plan truncated": (lambda c: [_cut(c.plan()) and "eval", "--engine", c.tmp / "m.plan"], "truncated"),
    "manifest not json": (lambda c: ["eval", "--engine", _manifest(c, lambda m: b"{nope")], "not valid UTF-8 JSON"),
    "manifest list": (lambda c: ["eval", "--engine", _manifest(c, lambda m: [m])], "not a wrn-deploy engine"),
    "manifest missing key": (lambda c: ["eval", "--engine", _manifest(c, lambda m: m.pop("plan_sha256") and m)],
                             "plan_sha256"),
    "manifest not utf-8": (lambda c: ["eval", "--engine", _manifest(c, lambda m: b"\xff\xfe\x00{")], "UTF-8"),
    "manifest version": (lambda c: ["eval", "--engine", _manifest(c, lambda m: m.update(tensorrt_version="eleven")
                                                                  or m)], "eleven"),
    "plan unsigned under policy": (lambda c: [c.mp.setenv("WRN_DEPLOY_VERIFY_KEY", str(c.art / "k.pub")) or "eval",
                                              "--engine", c.plan()], "requires a signature"),
    "plan host code unsigned": (lambda c: ["eval", "--engine", c.plan(), "--allow-host-code"], "--allow-host-code"),
    "plan wrong key file": (lambda c: ["eval", "--engine", c.plan(sign=True), "--verify-key", c.art / "k.pem"],
                            "public key"),
    # keygen
    "keygen same path": (lambda c: ["keygen", c.tmp / "k", c.tmp / "k"], "two different paths"),
    "keygen same through link": (lambda c: [os.symlink(c.tmp / "k", c.tmp / "l") or "keygen", c.tmp / "k",
                                            c.tmp / "l"], "two different paths|exists"),
    "keygen existing": (lambda c: [c.copy("k.pem") and "keygen", c.tmp / "k.pem", c.tmp / "new.pub"], "never replaces"),
    "keygen missing folder": (lambda c: ["keygen", c.tmp / "no" / "k", c.tmp / "k.pub"], "does not exist"),
    # found by probing as a careless user and an attacker would
    "quantize max-drop nan": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--max-drop", "nan"],
                              "not a finite number"),
    "quantize max-drop inf": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--max-drop", "inf"],
                              "max-drop"),
    "quantize percentile of another method": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx",
                                                         "--percentile", "99.9"], "pass --method percentile"),
    "pipeline calib-method typo": (lambda c: ["pipeline", "--calib-method", "percentil", "-o", c.tmp / "p"],
                                   "percentile"),
    "eval gate nan": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--min-agreement", "nan"], "not a finite"),
    "eval gate -inf": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--min-agreement", "-inf"], "min-agreement"),
    "eval drop negative": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--max-int8-drop", "-1"], "max-int8-drop"),
    "newline in path": (lambda c: ["export", c.ckpt(), "-o", c.copy("m.onnx", "a\nb.onnx")], r"a\\nb\.onnx exists"),
    "fifo as checkpoint": (lambda c: [os.mkfifo(c.tmp / "f.safetensors") or "export", c.tmp / "f.safetensors", "-o",
                                      c.tmp / "m.onnx"], "not a regular file"),
    "card kind lies": (lambda c: [_ckpt_card(c, kind="onnx") or "export", c.tmp / "bad.safetensors", "-o",
                                  c.tmp / "m.onnx"], "not a checkpoint"),
    "card mean nan": (lambda c: [_ckpt_card(c, mean=[float("nan")] * 3) or "export", c.tmp / "bad.safetensors", "-o",
                                 c.tmp / "m.onnx"], "finite"),
    "card names a huge network": (lambda c: [_ckpt_card(c, arch="wrn-1000-100") or "export", c.tmp / "bad.safetensors",
                                             "-o", c.tmp / "m.onnx"], "do not match"),
    # the command line itself
    "unknown command": (lambda c: ["nonsense"], "No such command"),
    "unknown option": (lambda c: ["export", "--nope"], "No such option"),
}


# -- the doors opened since: serving, the pipeline, reports, bench and the trust policy --------------
def _rerecord(folder: Path) -> None:
    """Rewrite a model folder's file record to match what is there (as an attacker could)."""
    from wrn_deploy.triton.files import RECORD, record_text

    (folder / RECORD).write_text(record_text(folder))


def _add_ep_context(model: Path, where: str = "graph") -> None:
    """An EPContext node (an embedded TensorRT engine, for ONNX Runtime's TensorRT provider) in the
    main graph, in a branch of an If node, or in a model-local function."""
    h = onnx.helper
    onnx_model = onnx.load(str(model / "1" / "model.onnx"))
    node = h.make_node("EPContext", [], ["ctx"], domain="com.microsoft", ep_cache_context=b"engine bytes", embed_mode=1)
    if where == "graph":
        onnx_model.graph.node.append(node)
    elif where == "if":
        out = h.make_tensor_value_info("ctx", onnx.TensorProto.FLOAT, None)
        branch = h.make_graph([node], "branch", [], [out])
        onnx_model.graph.node.append(h.make_node("If", ["cond"], ["ctx"], then_branch=branch, else_branch=branch))
    else:
        onnx_model.functions.append(h.make_function("local", "engine", [], ["ctx"], [node],
                                                    [h.make_opsetid("com.microsoft", 1)]))
    onnx.save(onnx_model, str(model / "1" / "model.onnx"))


def _weights_elsewhere(model: Path, where: str = "graph") -> None:
    """A tensor of model.onnx whose data a runtime would read from a file outside the folder, in the
    main graph's initializers or in a Constant node inside an If branch."""
    h = onnx.helper
    onnx_model = onnx.load(str(model / "1" / "model.onnx"))
    t = h.make_tensor("w", onnx.TensorProto.FLOAT, [4], [0.0] * 4)
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../../../etc/passwd")
    if where == "graph":
        onnx_model.graph.initializer.append(t)
    else:
        out = h.make_tensor_value_info("w", onnx.TensorProto.FLOAT, None)
        branch = h.make_graph([h.make_node("Constant", [], ["w"], value=t)], "branch", [], [out])
        onnx_model.graph.node.append(h.make_node("If", ["cond"], ["w"], then_branch=branch, else_branch=branch))
    onnx.save(onnx_model, str(model / "1" / "model.onnx"))


def _smuggle_through_arch(model: Path) -> None:
    card = json.loads((model / "card.json").read_text())
    evil = card["arch"] + '" } } parameters { key: "EXECUTION_ENV_PATH" value { string_value: "/tmp/env.tar.gz'
    text = (model / "config.pbtxt").read_text().replace(f'string_value: "{card["arch"]}"', f'string_value: "{evil}"')
    (model / "config.pbtxt").write_text(text)
    (model / "card.json").write_text(json.dumps({**card, "arch": evil}))


def _config_add(model: Path, line: str) -> None:
    (model / "config.pbtxt").write_text((model / "config.pbtxt").read_text() + line + "\n")


def _serve_edit(c, edit, rerecord=False, **repo):
    root = c.repo(**repo)
    edit(root / "m")
    if rerecord:
        _rerecord(root / "m")
    return ["serve", root, "--http-port", "18000", "--grpc-port", "18001", "--metrics-port", "18002"]


def _bare_plan(c, name="bare.plan"):
    """An 18-byte text file named like a plan, with no manifest."""
    (c.tmp / name).write_text("not an engine \n:)\n")
    return c.tmp / name


def _plan_repo(c):
    return c.repo(c.plan(), backend="native")


def _other_key(c):
    run_cli("keygen", c.tmp / "o.pem", c.tmp / "o.pub")
    return c.tmp / "o.pub"


def _report_folder(c, content):
    (c.tmp / "p").mkdir()
    (c.tmp / "p" / "report.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return c.tmp / "p"


def _marker(c, content):
    (c.tmp / "pipe").mkdir()
    (c.tmp / "pipe" / "pipeline.json").write_text(content)
    return c.tmp / "pipe"


GOOD_REPORT = {"format": "wrn-deploy.report/1", "model": {}, "machine": "m", "device": "cpu", "versions": {},
               "rows": [{"artifact": "x", "passed": True}], "steps": [], "passed": True, "failed_steps": []}
PORTS = ["--http-port", "18000", "--grpc-port", "18001", "--metrics-port", "18002"]

NEW_DOORS = {
    # the trust policy (stand-in TensorRT where it gets that far)
    "trust text file as plan": (lambda c: ["eval", "--engine", _bare_plan(c)], "no manifest.*--allow-unverified"),
    "trust bare plan with reference": (lambda c: ["eval", "--engine", _bare_plan(c), "--reference", c.ckpt()],
                                       "no manifest"),
    "trust bare plan under a key": (lambda c: ["eval", "--engine", _bare_plan(c), "--verify-key", c.art / "k.pub"],
                                    "requires a signature"),
    "trust bare plan allowed needs tensorrt": (lambda c: ["eval", "--engine", _bare_plan(c), "--allow-unverified",
                                                          "--reference", c.ckpt()], "'trt' extra"),
    "trust modified names the option": (lambda c: [_flip(c.plan()) and "eval", "--engine", c.tmp / "m.plan"],
                                        "modified; refusing to load it \\(--allow-unverified accepts the risk\\)"),
    "trust allowed still needs the signature": (lambda c: ["eval", "--engine", _tamper_signed(c), "--verify-key",
                                                           c.art / "k.pub", "--allow-unverified"], "does not verify"),
    "trust allowed still needs a key": (lambda c: ["eval", "--engine", _tamper_signed(c), "--allow-unverified"],
                                        "signed, but no key"),
    "trust empty plan": (lambda c: [c.plan().write_bytes(b"") or "eval", "--engine", c.tmp / "m.plan"],
                         "0 bytes but its manifest"),
    "trust manifest is a folder": (lambda c: [_bare_plan(c, "d.plan") and (c.tmp / "d.plan.json").mkdir() or "eval",
                                              "--engine", c.tmp / "d.plan"], "Is a directory"),
    "trust plan is a folder": (lambda c: [(c.tmp / "f.plan").mkdir() or "eval", "--engine", c.tmp / "f.plan"],
                               "is a directory"),
    "trust plan_bytes a boolean": (lambda c: ["eval", "--engine", _manifest(c, lambda m: m.update(plan_bytes=True)
                                                                            or m)], "plan_bytes"),
    "trust env key missing": (lambda c: [c.mp.setenv("WRN_DEPLOY_VERIFY_KEY", str(c.tmp / "none.pub")) or "eval",
                                         "--engine", c.plan()], "cannot read the Ed25519 public key"),
    "trust env key is private": (lambda c: [c.mp.setenv("WRN_DEPLOY_VERIFY_KEY", str(c.art / "k.pem")) or "eval",
                                            "--engine", c.plan(sign=True)], "public key"),
    "trust other key": (lambda c: ["eval", "--engine", c.plan(sign=True), "--verify-key", _other_key(c)],
                        "does not verify"),
    "trust signature garbage": (lambda c: [c.plan(sign=True) and (c.tmp / "m.plan.sig").write_text("%%%") and "eval",
                                           "--engine", c.tmp / "m.plan", "--verify-key", c.art / "k.pub"],
                                "does not verify"),
    # bench
    "bench bare plan": (lambda c: ["bench", _bare_plan(c), "--no-triton"], "no manifest"),
    "bench modified plan": (lambda c: [_flip(c.plan()) and "bench", c.tmp / "m.plan", "--no-triton"], "modified"),
    "bench signed plan no key": (lambda c: ["bench", c.plan(sign=True), "--no-triton"], "signed, but no key"),
    "bench verify-key private": (lambda c: ["bench", c.plan(sign=True), "--verify-key", c.art / "k.pem",
                                            "--no-triton"], "public key"),
    "bench concurrency words": (lambda c: ["bench", c.copy("m.onnx"), "--concurrency", "a,b"], "client counts"),
    "bench concurrency zero": (lambda c: ["bench", c.copy("m.onnx"), "--concurrency", "0"], "between 1 and 256"),
    "bench output onto artifact": (lambda c: ["bench", c.copy("m.onnx"), "-o", c.tmp / "m.onnx", "--no-triton"],
                                   "is the input"),
    "bench output exists": (lambda c: [(c.tmp / "b.md").write_text("mine") and "bench", c.copy("m.onnx"), "-o",
                                       c.tmp / "b.md", "--no-triton"], "exists"),
    "bench output json exists": (lambda c: [(c.tmp / "b.md.json").write_text("mine") and "bench", c.copy("m.onnx"),
                                            "-o", c.tmp / "b.md", "--no-triton"], "exists"),
    "bench too few images": (lambda c: ["bench", c.copy("m.onnx"), "--images", "4"], "--images"),
    "bench missing artifact": (lambda c: ["bench", c.tmp / "no.onnx", "--no-triton"], "does not exist"),
    "bench batch zero": (lambda c: ["bench", c.copy("m.onnx"), "--batch-size", "0"], "--batch-size"),
    # triton
    "triton bare plan": (lambda c: ["triton", _bare_plan(c), "-o", c.tmp / "repo"], "no manifest"),
    "triton modified plan": (lambda c: [_flip(c.plan()) and "triton", c.tmp / "m.plan", "-o", c.tmp / "repo"],
                             "modified"),
    "triton truncated plan": (lambda c: [_cut(c.plan()) and "triton", c.tmp / "m.plan", "-o", c.tmp / "repo"],
                              "truncated"),
    "triton signed plan no key": (lambda c: ["triton", c.plan(sign=True), "-o", c.tmp / "repo"], "signed, but no key"),
    "triton signed plan other key": (lambda c: ["triton", c.plan(sign=True), "-o", c.tmp / "repo", "--verify-key",
                                                _other_key(c)], "does not verify"),
    "triton unsigned plan under policy": (lambda c: ["triton", c.plan(), "-o", c.tmp / "repo", "--verify-key",
                                                     c.art / "k.pub"], "requires a signature"),
    "triton manifest without profile": (lambda c: ["triton", _manifest(c, lambda m: m.pop("profile") and m), "-o",
                                                   c.tmp / "repo", "--no-check-load"], "'profile'"),
    "triton manifest profile text": (lambda c: ["triton", _manifest(c, lambda m: m.update(profile={"min": "1",
                                                                                               "max": 8}) or m),
                                                "-o", c.tmp / "repo", "--no-check-load"], "'profile'"),
    "triton manifest not json": (lambda c: ["triton", _manifest(c, lambda m: b"{nope"), "-o", c.tmp / "repo"],
                                 "not valid UTF-8 JSON"),
    "triton model name": (lambda c: ["triton", c.copy("m.onnx"), "-o", c.tmp / "repo", "--name", "a/b"], "model name"),
    "triton model exists": (lambda c: [c.repo() and "triton", c.copy("m.onnx", "n.onnx"), "-o", c.tmp / "repo",
                                       "--name", "m", "--no-check-load"], "exists; pass --force"),
    "triton checkpoint native": (lambda c: ["triton", c.ckpt(), "-o", c.tmp / "repo"], "no native Triton backend"),
    "triton accelerator on cpu": (lambda c: ["triton", c.copy("m.onnx"), "-o", c.tmp / "repo", "--trt-accelerator"],
                                  "--trt-accelerator"),
    "triton empty name": (lambda c: ["triton", c.copy("m.onnx"), "-o", c.tmp / "repo", "--name", ""], "--name is empty"),
    "triton max batch zero": (lambda c: ["triton", c.copy("m.onnx"), "-o", c.tmp / "repo", "--max-batch", "0"],
                              "--max-batch"),
    "triton openvino for a checkpoint": (lambda c: ["triton", c.ckpt(), "-o", c.tmp / "repo", "--backend", "openvino"],
                                         "serves an ONNX file, not a checkpoint"),
    "triton openvino on a gpu": (lambda c: ["triton", c.copy("m.onnx"), "-o", c.tmp / "repo", "--backend", "openvino",
                                            "--kind", "gpu"], "CPU instances only"),
    "triton openvino with the accelerator": (lambda c: ["triton", c.copy("m.onnx"), "-o", c.tmp / "repo", "--backend",
                                                        "openvino", "--kind", "gpu", "--trt-accelerator"],
                                             "--trt-accelerator"),
    "triton missing artifact": (lambda c: ["triton", c.tmp / "no.onnx", "-o", c.tmp / "repo"], "does not exist"),
    "triton unknown suffix": (lambda c: [(c.tmp / "m.bin").write_bytes(b"x") and "triton", c.tmp / "m.bin", "-o",
                                         c.tmp / "repo"], "unknown artifact type"),
    "triton artifact inside the model": (lambda c: [c.repo() and "triton", c.tmp / "repo" / "m" / "1" / "model.onnx",
                                                    "-o", c.tmp / "repo", "--name", "m", "--force",
                                                    "--no-check-load"], "write the repository elsewhere"),
    # serve: every refusal comes before a server starts
    "serve foreign folder": (lambda c: [(c.tmp / "r" / "m").mkdir(parents=True) or (c.tmp / "r" / "m" / "config.pbtxt")
                                        .write_text('backend: "python"') and "serve", c.tmp / "r", *PORTS],
                             "not written by wrn-deploy triton"),
    "serve foreign model.py, record rewritten": (lambda c: _serve_edit(c, lambda m: (m / "1" / "model.py").write_text(
        "import os\nos.system('id')\n"), rerecord=True), "not wrn-deploy's Python-backend model"),
    # A writer of the folder can rewrite the record too: what could run as code is checked by name and content.
    "serve second python file, record rewritten": (lambda c: _serve_edit(c, lambda m: (m / "1" / "helper.py").write_text(
        "import os\n") or _config_add(m, 'default_model_filename: "helper.py"'), rerecord=True),
        "helper.py is not a file wrn-deploy triton writes"),
    "serve config names another model file, record rewritten": (lambda c: _serve_edit(
        c, lambda m: _config_add(m, 'default_model_filename: "model.onnx"'), rerecord=True),
        "is not the config wrn-deploy triton writes"),
    "serve config swaps the python environment, record rewritten": (lambda c: _serve_edit(
        c, lambda m: _config_add(m, 'parameters { key: "EXECUTION_ENV_PATH" value { string_value: "/tmp/env.tar.gz" } }'),
        rerecord=True), "is not the config wrn-deploy triton writes"),
    "serve config loads an op library, record rewritten": (lambda c: _serve_edit(
        c, lambda m: _config_add(m, 'model_operations { op_library_filename: "/tmp/x.so" }'), rerecord=True),
        "is not the config wrn-deploy triton writes"),
    "serve config names another backend, record rewritten": (lambda c: _serve_edit(
        c, lambda m: (m / "config.pbtxt").write_text((m / "config.pbtxt").read_text().replace(
            'backend: "python"', 'backend: "evil"')), rerecord=True), "is not the config wrn-deploy triton writes"),
    "serve instance name into the stub's shell, record rewritten": (lambda c: _serve_edit(
        c, lambda m: (m / "config.pbtxt").write_text((m / "config.pbtxt").read_text().replace(
            "count: 1", 'name: "x; touch /tmp/pwned #"\n    count: 1')), rerecord=True),
        "is not the config wrn-deploy triton writes"),
    "serve a second version folder, record rewritten": (lambda c: _serve_edit(
        c, lambda m: (m / "2").mkdir(), rerecord=True), "2 is not a file or folder"),
    "serve an engine inside the onnx, record rewritten": (lambda c: _serve_edit(c, _add_ep_context, rerecord=True),
                                                          "holds a compiled engine"),
    "serve an engine in an If branch, record rewritten": (lambda c: _serve_edit(
        c, lambda m: _add_ep_context(m, "if"), rerecord=True), "holds a compiled engine"),
    "serve an engine in a local function, record rewritten": (lambda c: _serve_edit(
        c, lambda m: _add_ep_context(m, "function"), rerecord=True), "holds a compiled engine"),
    # The card's arch is pasted into config.pbtxt: quotes in it could add fields to a config that
    # still equals what triton renders for that card.
    "serve card arch smuggles config fields, record rewritten": (lambda c: _serve_edit(
        c, _smuggle_through_arch, rerecord=True), "is not a WRN name"),
    "serve a second record in the version folder, record rewritten": (lambda c: _serve_edit(
        c, lambda m: (m / "1" / "wrn-deploy-files.json").write_text("{}"), rerecord=True),
        "is not a file wrn-deploy triton writes"),
    "serve weights read from outside, record rewritten": (lambda c: _serve_edit(
        c, _weights_elsewhere, rerecord=True), "keeps tensor data in other files"),
    "serve weights read from outside in an If branch, record rewritten": (lambda c: _serve_edit(
        c, lambda m: _weights_elsewhere(m, "if"), rerecord=True), "keeps tensor data in other files"),
    "serve relabelled outputs, record rewritten": (lambda c: _serve_edit(
        c, lambda m: (m / "labels.txt").write_text("cat\n" * 10), rerecord=True), "does not list the card's class"),
    "serve a pipe in the model folder": (lambda c: _serve_edit(c, lambda m: os.mkfifo(m / "1" / "fifo")),
                                         "fifo is not a file or folder"),
    "serve edited model.py": (lambda c: _serve_edit(c, lambda m: (m / "1" / "model.py").write_text("import os\n")),
                              "changed after"),
    "serve extra file": (lambda c: _serve_edit(c, lambda m: (m / "1" / "evil.so").write_bytes(b"\x7fELF")),
                         "evil.so is not in"),
    "serve missing file": (lambda c: _serve_edit(c, lambda m: (m / "labels.txt").unlink()), "labels.txt is recorded"),
    "serve edited config": (lambda c: _serve_edit(c, lambda m: (m / "config.pbtxt").write_text(
        (m / "config.pbtxt").read_text() + "\n# edited\n")), "config.pbtxt changed"),
    "serve swapped model": (lambda c: _serve_edit(c, lambda m: (m / "1" / "model.onnx").write_bytes(
        (c.art / "h.onnx").read_bytes())), "model.onnx changed"),
    "serve record not json": (lambda c: _serve_edit(c, lambda m: (m / "wrn-deploy-files.json").write_text("{")),
                              "not valid UTF-8 JSON"),
    "serve record of another kind": (lambda c: _serve_edit(c, lambda m: (m / "wrn-deploy-files.json").write_text(
        '{"format": "x", "files": {}}')), "not a wrn-deploy file record"),
    "serve record removed": (lambda c: _serve_edit(c, lambda m: (m / "wrn-deploy-files.json").unlink()),
                             "has no wrn-deploy-files.json"),
    "serve link inside a model": (lambda c: _serve_edit(c, lambda m: os.symlink("/etc/hostname", m / "1" / "x")),
                                  "is a link"),
    "serve model folder is a link": (lambda c: [c.repo() and os.symlink(c.tmp / "repo" / "m", c.tmp / "repo" / "m2")
                                                or "serve", c.tmp / "repo", *PORTS], "m2 is a link"),
    "serve leftover folder": (lambda c: [c.repo() and (c.tmp / "repo" / ".m.wrn-tmp").mkdir() or "serve",
                                         c.tmp / "repo", *PORTS], "not written by wrn-deploy triton"),
    "serve empty repository": (lambda c: [(c.tmp / "r").mkdir() or "serve", c.tmp / "r", *PORTS],
                               "holds no model folder"),
    "serve swapped plan, record rewritten": (lambda c: [_plan_repo(c) and _flip(c.tmp / "repo" / "m" / "1" /
                                                                                  "model.plan")
                                                        and _rerecord(c.tmp / "repo" / "m") or "serve",
                                                        c.tmp / "repo", *PORTS], "sha256 in its manifest"),
    "serve plan repo under a key": (lambda c: [_plan_repo(c) and "serve", c.tmp / "repo", *PORTS, "--verify-key",
                                               c.art / "k.pub"], "requires a signature"),
    "serve bare plan": (lambda c: ["serve", _bare_plan(c), *PORTS], "no manifest"),
    "serve same ports": (lambda c: ["serve", c.repo(), "--http-port", "18000", "--grpc-port", "18000"], "must differ"),
    "serve missing source": (lambda c: ["serve", c.tmp / "nothing"], "does not exist"),
    # pipeline: refused before any step runs
    "pipeline out is a file": (lambda c: [(c.tmp / "f").write_text("x") and "pipeline", "-o", c.tmp / "f"], "is a file"),
    "pipeline foreign folder": (lambda c: [(c.tmp / "d").mkdir() or (c.tmp / "d" / "mine.txt").write_text("x")
                                           and "pipeline", "-o", c.tmp / "d"], "no pipeline wrote"),
    "pipeline marker garbage": (lambda c: ["pipeline", "-o", _marker(c, "{nope")], "not a wrn-deploy pipeline marker"),
    "pipeline marker run id": (lambda c: ["pipeline", "-o", _marker(c, '{"format": "wrn-deploy.pipeline/1", '
                                                                       '"run": 5}')], "pipeline marker"),
    "pipeline checkpoint is onnx": (lambda c: ["pipeline", "--checkpoint", c.copy("m.onnx"), "-o", c.tmp / "p"],
                                    "is an onnx file"),
    "pipeline arch against checkpoint": (lambda c: ["pipeline", "--checkpoint", c.ckpt(), "--arch", "wrn-16-1", "-o",
                                                    c.tmp / "p"], "leave --arch out"),
    "pipeline data against checkpoint": (lambda c: ["pipeline", "--checkpoint", c.ckpt(), "--data", "cifar10", "-o",
                                                    c.tmp / "p"], "trained on"),
    "pipeline epochs with checkpoint": (lambda c: ["pipeline", "--checkpoint", c.ckpt(), "--epochs", "2", "-o",
                                                   c.tmp / "p"], "--epochs trains"),
    "pipeline device": (lambda c: ["pipeline", "--device", "tpu", "-o", c.tmp / "p"], "use auto, cpu, cuda"),
    "pipeline data-dir missing": (lambda c: ["pipeline", "--data", "cifar10", "--data-dir", c.tmp / "no", "-o",
                                             c.tmp / "p"], "does not exist"),
    "pipeline agreement nan": (lambda c: ["pipeline", "--min-int8-agreement", "nan", "-o", c.tmp / "p"],
                               "not a finite"),
    "pipeline agreement above 100": (lambda c: ["pipeline", "--min-int8-agreement", "101", "-o", c.tmp / "p"],
                                     "min-int8-agreement"),
    "pipeline arch": (lambda c: ["pipeline", "--arch", "wrn-27-10", "-o", c.tmp / "p"], "valid forms"),
    "pipeline checkpoint missing": (lambda c: ["pipeline", "--checkpoint", c.tmp / "no.safetensors", "-o",
                                               c.tmp / "p"], "does not exist"),
    "pipeline calib-size above held-out": (lambda c: ["pipeline", "--calib-size", "1000", "-o", c.tmp / "p"],
                                           "give --calib-size 600 or fewer"),
    "pipeline calib-size leaves the guard too few": (lambda c: ["pipeline", "--calib-size", "700", "-o", c.tmp / "p"],
                                                     "leaves 300 of the 1000 images"),
    "pipeline calib-size above checkpoint's held-out": (lambda c: ["pipeline", "--checkpoint", c.ckpt(), "--calib-size",
                                                                   "100000", "-o", c.tmp / "p"], "held out of"),
    # report
    "report no report.json": (lambda c: [(c.tmp / "p").mkdir() or "report", c.tmp / "p"], "cannot read it"),
    "report not json": (lambda c: ["report", _report_folder(c, "{nope")], "is not JSON"),
    "report a list": (lambda c: ["report", _report_folder(c, [GOOD_REPORT])], "not a wrn-deploy pipeline report"),
    "report other format": (lambda c: ["report", _report_folder(c, dict(GOOD_REPORT, format="x/1"))],
                            "not a wrn-deploy pipeline report"),
    "report rows missing": (lambda c: ["report", _report_folder(c, {k: v for k, v in GOOD_REPORT.items()
                                                                    if k != "rows"})], "malformed"),
    "report row gates missing": (lambda c: ["report", _report_folder(c, dict(GOOD_REPORT, rows=[{"artifact": "x",
                                                                                           "passed": False}]))],
                                 "malformed"),
    "report folder is a file": (lambda c: [(c.tmp / "f").write_text("x") and "report", c.tmp / "f"], "is a file"),
    "report one of two bad": (lambda c: ["report", _report_folder(c, "[]"), c.tmp / "missing"],
                              "not a wrn-deploy pipeline report"),
    # the smaller items: each message names the file or the candidate at fault
    "card num_classes as text": (lambda c: ["eval", "--onnx", c.onnx_with_card(lambda d: d.update(num_classes="10"))],
                                 "num_classes must be a whole number, got '10'"),
    "card class name with a newline": (lambda c: ["eval", "--onnx", c.onnx_with_card(
        lambda d: d.update(classes=["a\nb", *d["classes"][1:]]))], r"class 0 \('a\\nb'\) has a control"),
    "quantize corrupt cached ranges": (lambda c: ["quantize", c.copy("m.onnx"), "-o", c.tmp / "q2.onnx", "--calib-dir",
                                                  _bad_ranges(c), "--calib-size", "128"],
                                       "ranges.json changed after it was calibrated"),
    "eval names the candidate at fault": (lambda c: ["eval", "--onnx", c.copy("m.onnx"), "--onnx", _orphan(c)],
                                          "edited.onnx: its source checkpoint .* is not here"),
}
CASES.update(NEW_DOORS)
CASES.update(IMPORT_CASES)


def _imagenet(ctx, folders=("n01440764", "n01443537"), flat=False, files=None) -> Path:
    """A small ImageNet-style folder: train/ and val/ class folders (or a flat val/) of 80x70 JPEGs,
    with ``files`` ({name: bytes or text}) at its root."""
    from PIL import Image

    root = ctx.tmp / "imagenet"
    for split in ("train", "val"):
        for k, wnid in enumerate(folders):
            folder = root / split / ("" if flat and split == "val" else wnid)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(2):
                name = f"ILSVRC2012_val_{2 * k + i + 1:08d}" if split == "val" else f"{wnid}_{i}"
                Image.new("RGB", (80, 70), (k * 90, i * 60, 9)).save(folder / f"{name}.JPEG", format="JPEG")
    for name, data in (files or {}).items():
        (root / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def _evil_meta_bin() -> bytes:
    import pickle

    class Evil:
        def __reduce__(self):
            return os.system, ("touch pwned",)

    return pickle.dumps(({"n01440764": ("tench",)}, [Evil()]), protocol=2)


def _eval_imagenet(c, root):
    return ["eval", "--onnx", c.copy("m.onnx"), "--data", "imagenet", "--data-dir", root]


CASES.update({
    "eval imagenet flat val without labels": (lambda c: _eval_imagenet(c, _imagenet(c, flat=True)),
                                              "no label file was found"),
    "eval imagenet ground truth without meta": (lambda c: _eval_imagenet(c, _imagenet(c, flat=True, files={
        "ILSVRC2012_validation_ground_truth.txt": "449\n449\n450\n450\n"})), "needs the devkit's meta.mat"),
    "eval imagenet meta.bin with code": (lambda c: _eval_imagenet(c, _imagenet(c, files={"meta.bin": _evil_meta_bin()})),
                                         "weights_only"),
    "eval imagenet folders not wordnet ids": (lambda c: _eval_imagenet(c, _imagenet(c, folders=("cat", "dog"))),
                                              "not a WordNet id"),
    "eval imagenet classes differ": (lambda c: _eval_imagenet(c, _imagenet(c)), "has 2 classes; the model has 10"),
    "eval imagenet val.txt names an unknown class": (lambda c: _eval_imagenet(c, _imagenet(c, flat=True, files={
        "val.txt": "ILSVRC2012_val_00000001.JPEG n09999999\n"})), "has no label|not one of the"),
})


def _bad_ranges(c):
    """A calibration folder whose cached ranges are garbage, where quantize will reuse them."""
    return _bad_cache(c, "ranges.json")


def _bad_ckpt_card(c):
    from safetensors import safe_open
    from safetensors.torch import save_file

    src = c.art / "run" / "best.safetensors"
    with safe_open(str(src), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    card = json.loads(meta["card"])
    card["classes"] = "not a list"
    save_file(tensors, str(c.tmp / "bad.safetensors"), metadata=dict(meta, card=json.dumps(card)))


def _ckpt_card(c, **changes):
    """The trained checkpoint's weights under a card with ``changes`` (as an attacker would edit it)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    src = c.art / "run" / "best.safetensors"
    with safe_open(str(src), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    card = json.loads(meta["card"])
    card.update(changes)
    save_file(tensors, str(c.tmp / "bad.safetensors"), metadata=dict(meta, card=json.dumps(card)))


def _external(c):
    """An ONNX whose weights point at a file outside its folder."""
    path = c.copy("m.onnx", "ext.onnx")
    model = onnx.load(str(path))
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../../etc/passwd")
    onnx.save(model, str(path))
    return path


def _other_arch(c):
    from tests.export.conftest import make_checkpoint

    return make_checkpoint(c.tmp / "other.safetensors", arch="wrn-10-2")


def _orphan(c):
    """An ONNX whose source checkpoint is gone (the card names a path that does not exist)."""
    def edit(card):
        card["origin"]["path"] = str(c.tmp / "gone.safetensors")
    return c.onnx_with_card(edit)


def _fixed_64(c):
    """An ONNX whose graph takes 64-px images while its card (and the data) say 32."""
    from tests.export.conftest import make_checkpoint

    ckpt = make_checkpoint(c.tmp / "w.safetensors", arch="wrn-10-1")
    run_cli("export", ckpt, "-o", c.tmp / "w.onnx", "--no-verify", "--batch", "8")
    model = onnx.load(str(c.tmp / "w.onnx"))
    for d in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_value = 64
    onnx.save(model, str(c.tmp / "w.onnx"))
    return c.tmp / "w.onnx"


def _bad_cache(c, name="manifest.json"):
    """A calibration folder whose manifest (or ``name``) is garbage, where quantize will look for
    cached ranges."""
    cal = c.tmp / "cal"
    shutil.copytree(c.art / "calib", cal)
    (folder,) = cal.iterdir()
    (folder / name).write_text("{garbage")
    return cal


def _flip(plan):
    data = bytearray(plan.read_bytes())
    data[-3] ^= 0xFF
    plan.write_bytes(bytes(data))
    return plan


def _cut(plan):
    plan.write_bytes(plan.read_bytes()[:-10])
    return plan


def _snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _run(argv) -> tuple:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        wrn_deploy.cli.main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, art, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WRN_DEPLOY_VERIFY_KEY", raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # absent unless a case brings the stand-in
    template = request.getfixturevalue("python_repo") if case.startswith(("serve", "triton")) else None
    ctx = Ctx(tmp_path, art, monkeypatch, template)
    ctx.mounts = []
    try:
        setup, fragment = CASES[case]
        argv = setup(ctx)
        before = _snapshot(tmp_path)
        code, out, err = _run(argv)
        # Progress bars (\r-redrawn, cleared when they close) share stderr with the error line.
        lines = [line for line in re.split(r"[\r\n]", err)
                 if line.strip() and not re.search(r"\d+%\|", line) and not line.startswith("warning:")]
        assert code != 0, f"exit 0\n{out}\n{err}"
        assert len(lines) == 1, err
        assert lines[0].startswith("wrn-deploy: error:") and "Traceback" not in err, err
        assert re.search(fragment, lines[0]), lines[0]
        after = _snapshot(tmp_path)
        changed = [str(p) for p, data in before.items() if after.get(p) != data]
        assert not changed, f"changed or removed: {changed}"
        new = [str(p.relative_to(tmp_path)) for p in after if p not in before]
        assert not new, f"left behind: {new}"
    finally:
        for m in ctx.mounts:
            subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 180 and len(NEW_DOORS) >= 60


def test_debug_switch_shows_the_traceback(tmp_path):
    env = dict(os.environ, WRN_DEPLOY_DEBUG="1")
    proc = subprocess.run([sys.executable, "-m", "wrn_deploy", "export", tmp_path / "no.safetensors", "-o",
                           tmp_path / "m.onnx"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and proc.stderr.strip().endswith("does not exist")


def test_two_trainings_into_one_folder(tmp_path):
    """The second is refused while the first holds the folder; the first finishes untouched."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "wrn_deploy", "train", "--arch", "wrn-10-1", "--epochs", "1",
                              "--train-images", "1000", "--out", str(out), "--no-progress"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / ".lock").exists():
        assert first.poll() is None, first.stderr.read()
        time.sleep(0.05)
    second = run_cli("train", "--arch", "wrn-10-1", "--epochs", "1", "--out", out, "--resume", check=False)
    assert first.wait() == 0, first.stderr.read()
    assert second.returncode == 2 and "another wrn-deploy train is using" in second.stderr, second.stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1


def test_skip_bad_images_says_how_many(tmp_path):
    from wrn_deploy.data import load_dataset

    ctx = Ctx(tmp_path, tmp_path, None)
    root = _text_as_jpeg(ctx)
    (root / "test" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    ds = load_dataset("imagefolder", root, val_size=2, skip_bad=True, progress=False)
    assert ds.identity["skipped_unreadable"] == 2 and len(ds.test) == 12


def test_artifacts_follow_the_umask(tmp_path, art):
    old = os.umask(0o027)
    try:
        run_cli("export", art / "run" / "best.safetensors", "-o", tmp_path / "m.onnx", "--no-verify")
        run_cli("keygen", tmp_path / "k", tmp_path / "k.pub", process=True)  # the umask a child inherits
    finally:
        os.umask(old)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "m.report.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pub").stat().st_mode & 0o777 == 0o640


def test_killed_runs_leave_nothing_the_next_run_keeps(tmp_path):
    """A temporary file of a dead process is removed by the next write into that folder."""
    from wrn_deploy.fileio import write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".m.onnx.{dead}.wrn-tmp.abc123"
    stale.write_bytes(b"half")
    write_text(tmp_path / "other.txt", "x")
    assert not stale.exists() and (tmp_path / "other.txt").read_text() == "x"


def _stop_while_writing(cmd: list, output: Path) -> subprocess.Popen | None:
    """Start ``cmd``; the moment the temporary file of ``output`` appears, freeze it (SIGSTOP) and
    return it, or None when it finished before its temporary file could be seen."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder, pattern = output.parent, f".{output.name}.*wrn-tmp*"
    while not list(folder.glob(pattern)):
        if proc.poll() is not None:
            return None
        time.sleep(0.01)
    proc.send_signal(signal.SIGSTOP)
    if not list(folder.glob(pattern)):  # it finished between the look and the stop
        proc.send_signal(signal.SIGCONT)
        proc.wait()
        return None
    return proc


def test_sigterm_leaves_no_temporary_file(art, tmp_path):
    """SIGTERM while the output is being written (its temporary file exists: an event, not a guess of
    time) ends with exit 143, one line, and no file at all."""
    cmd = [sys.executable, "-m", "wrn_deploy", "export", art / "run" / "best.safetensors", "-o", tmp_path / "m.onnx",
           "--verify-images", "256"]
    for _ in range(3):  # a run that outpaced the poll is retried, never counted as a pass
        proc = _stop_while_writing(cmd, tmp_path / "m.onnx")
        if proc:
            break
        for f in tmp_path.iterdir():
            f.unlink()
    assert proc, "the export finished three times before its temporary file could be seen"
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    assert proc.wait() == 143
    assert "stopped by SIGTERM" in proc.stderr.read()
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path):
    """Two runs checked the same absent output; the second to finish must not replace the first's."""
    from wrn_deploy.errors import UserError
    from wrn_deploy.fileio import atomic_output

    out = tmp_path / "m.onnx"
    with pytest.raises(UserError, match="appeared while this ran"):
        with atomic_output(out, replace=False) as tmp:
            tmp.write_text("second")
            out.write_text("first")  # the other run finishes first
    assert out.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_a_full_disk_names_the_output(tmp_path):
    """ENOSPC from a write carries no file name; the error names the output, not its temporary name."""
    import errno

    from wrn_deploy.fileio import atomic_output

    out = tmp_path / "m.onnx"
    with pytest.raises(OSError) as e, atomic_output(out) as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert e.value.filename == str(out) and e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
