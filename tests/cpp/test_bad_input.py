"""Bad input to wrn-classify, as a careless user and an attacker would give it: every case is one
line on stderr naming the problem, nothing on stdout and exit status 2; never a crash. The same
corpus runs on the sanitizer build (test_sanitizers.py)."""

import hashlib
import json
import struct
import zlib
from pathlib import Path

import onnx
import pytest

from tests.cpp.conftest import ERROR_PREFIX, classify
from wrn_deploy.card import read_card


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, depth: int = 8, color: int = 2, idat: bytes | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    if idat is None:
        row = bytes(1 + width * 3)
        idat = zlib.compress(row * height)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _manifest(plan: Path, card: dict, data: bytes, **changes) -> Path:
    man = {"format": "wrn-deploy.engine/1", "tensorrt_version": "10.13.3.9", "gpu": "NVIDIA H100 80GB HBM3",
           "compute_capability": [9, 0], "build": {"version_compatible": False},
           "plan_sha256": hashlib.sha256(data).hexdigest(), "plan_bytes": len(data), "card": card}
    man.update(changes)
    path = Path(str(plan) + ".json")
    path.write_text(json.dumps(man))
    return path


def _onnx_with_card(src: Path, dst: Path, card_text: str | None) -> Path:
    model = onnx.load(str(src))
    props = [(p.key, p.value) for p in model.metadata_props if p.key != "wrn_deploy.card"]
    del model.metadata_props[:]
    for k, v in props:
        model.metadata_props.add(key=k, value=v)
    if card_text is not None:
        model.metadata_props.add(key="wrn_deploy.card", value=card_text)
    onnx.save(model, str(dst))
    return dst


class Corpus:
    """Builds each bad case in a folder: (model, images, extra args, words the error must contain)."""

    def __init__(self, tmp: Path, models: dict, cifar_dir: Path):
        self.tmp, self.models = tmp, models
        self.good = min((cifar_dir / "test").glob("*/*.png"))
        self.card = read_card(models["fp32"]).to_dict()

    def file(self, name: str, data: bytes) -> Path:
        p = self.tmp / name
        p.write_bytes(data)
        return p

    def plan(self, data: bytes = b"not really a TensorRT engine" * 40, **changes) -> Path:
        p = self.file("m.plan", data)
        _manifest(p, dict(self.card, kind="plan"), data, **changes)
        return p

    def card_with(self, **changes) -> Path:
        return _onnx_with_card(self.models["fp32"], self.tmp / "c.onnx", json.dumps(dict(self.card, **changes)))


def _truncated(c):
    return c.file("t.png", c.good.read_bytes()[:200])


def _corrupt_png(c):
    data = bytearray(c.good.read_bytes())
    data[60:70] = b"\x00" * 10  # inside IDAT: its CRC no longer matches
    return c.file("c.png", bytes(data))


def _truncated_jpeg(c):
    from PIL import Image

    Image.open(c.good).convert("RGB").resize((128, 128)).save(c.tmp / "full.jpg", quality=90)
    return c.file("t.jpg", (c.tmp / "full.jpg").read_bytes()[:900])


def _huge_jpeg(c):
    """A real JPEG whose frame header claims 60000 x 60000 pixels."""
    from PIL import Image

    Image.open(c.good).convert("RGB").save(c.tmp / "ok.jpg", quality=90)
    data = bytearray((c.tmp / "ok.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    return c.file("huge.jpg", bytes(data))


def _tampered_plan(c):
    p = c.plan()
    data = bytearray(p.read_bytes())
    data[5] ^= 1
    p.write_bytes(bytes(data))
    return p


def _pointing_elsewhere(c):
    other = c.file("other.plan", b"another engine entirely")
    p = c.plan()
    # A manifest copied from another plan: the size may even match, the hash never does.
    _manifest(p, dict(c.card, kind="plan"), other.read_bytes(), plan_bytes=p.stat().st_size)
    return p


def _signed_plan(c):
    p = c.plan()
    c.file("m.plan.sig", b"c2lnbmF0dXJl\n")
    return p


# name: (model factory, image factory, extra args, words expected in the error)
CASES = {
    "missing image": (None, lambda c: c.tmp / "nope.png", [], ["nope.png", "does not exist"]),
    "image is a folder": (None, lambda c: c.tmp, [], ["is not a regular file"]),
    "empty image": (None, lambda c: c.file("e.png", b""), [], ["not a PNG or JPEG"]),
    "text named .png": (None, lambda c: c.file("t.png", b"hello, I am text\n"), [], ["not a PNG or JPEG"]),
    "gif": (None, lambda c: c.file("g.gif", b"GIF89a" + bytes(40)), [], ["not a PNG or JPEG"]),
    "truncated png": (None, _truncated, [], ["cannot decode image", "t.png"]),
    "corrupt png": (None, _corrupt_png, [], ["cannot decode image", "c.png"]),
    "truncated jpeg": (None, _truncated_jpeg, [], ["cannot decode image", "t.jpg"]),
    "huge png header": (None, lambda c: c.file("h.png", _png(100000, 100000, idat=b"x")), [],
                        ["100000x100000", "limit"]),
    "huge jpeg header": (None, _huge_jpeg, [], ["60000x60000", "limit"]),
    "newline in a missing file's name": (None, lambda c: c.tmp / "a\nb.png", [], ["does not exist"]),
    "wide png beyond libpng's limit": (None, lambda c: c.file("w.png", _png(2_000_000, 1, idat=b"x")), [],
                                       ["cannot decode image", "w.png"]),
    "invalid png header (16-bit palette)": (None, lambda c: c.file("p16.png", _png(32, 32, depth=16, color=3)),
                                            [], ["cannot decode image", "p16.png"]),
    "wrong size for the model": (None, lambda c: c.file("s.png", _png(40, 40)), [], ["40x40", "32x32"]),
    "large image, card without resize": (None, lambda c: c.file("l.png", _png(200, 150)), [],
                                         ["200x150", "32x32", "no resize"]),
    "card preprocess resize below input_size": (lambda c: c.card_with(preprocess={"resize": 16}), None, [],
                                                ["preprocess.resize", "16"]),
    "card preprocess unknown interpolation": (lambda c: c.card_with(preprocess={"resize": 36, "interpolation": "nearest"}),
                                              None, [], ["preprocess.interpolation", "nearest"]),
    "card preprocess unknown field": (lambda c: c.card_with(preprocess={"resize": 36, "crop": 30}), None, [],
                                      ["unknown preprocess field 'crop'"]),
    "card preprocess not an object": (lambda c: c.card_with(preprocess="256"), None, [], ["'preprocess' is not an object"]),
    "card preprocess resize not a number": (lambda c: c.card_with(preprocess={"resize": "36"}), None, [],
                                            ["preprocess.resize"]),
    "missing model": (lambda c: c.tmp / "none.onnx", None, [], ["none.onnx", "does not exist"]),
    "model is a folder": (lambda c: c.tmp / "dir.onnx", None, [], ["not a regular file"]),
    "model is not onnx": (lambda c: c.file("junk.onnx", b"\x00garbage" * 100), None, [], ["ONNX Runtime cannot load"]),
    "checkpoint as model": (lambda c: c.file("m.safetensors", b"{}"), None, [], ["unknown model type .safetensors"]),
    "onnx without card": (lambda c: _onnx_with_card(c.models["fp32"], c.tmp / "n.onnx", None), None, [],
                          ["no wrn-deploy card"]),
    "card not json": (lambda c: _onnx_with_card(c.models["fp32"], c.tmp / "j.onnx", "{not json"), None, [],
                      ["not valid JSON"]),
    "card absurd input_size": (lambda c: c.card_with(input_size=10**9), None, [], ["input_size", "4096"]),
    "card zero input_size": (lambda c: c.card_with(input_size=0), None, [], ["input_size"]),
    "card input_size disagrees with graph": (lambda c: c.card_with(input_size=64), None, [],
                                             ["input shape does not match its card"]),
    "card of another format": (lambda c: c.card_with(format="wrn-deploy.card/1"), None, [], ["card format"]),
    "card without classes": (lambda c: c.card_with(classes=[], num_classes=0), None, [], ["classes"]),
    "card with zero std": (lambda c: c.card_with(std=[0.2, 0.0, 0.2]), None, [], ["std"]),
    "card says plan": (lambda c: c.card_with(kind="plan"), None, [], ["describes a plan"]),
    "plan hash mismatch": (_tampered_plan, None, [], ["does not match the sha256 in its manifest",
                                                      "--allow-unverified accepts the risk"]),
    "plan truncated": (lambda c: c.plan(plan_bytes=10**6), None, [], ["bytes but its manifest says 1000000"]),
    "manifest pointing elsewhere": (_pointing_elsewhere, None, [], ["does not match the sha256"]),
    "plan without manifest": (lambda c: c.file("bare.plan", b"engine"), None, [], ["has no manifest"]),
    "plan without manifest, allowed": (lambda c: c.file("bare.plan", b"engine"), None, ["--allow-unverified"],
                                       ["has no manifest", "needs the card"]),
    "class name with a newline": (lambda c: c.card_with(classes=["a\nb", *c.card["classes"][1:]]), None, [],
                                  ["class 0", "control"]),
    "class name with a bidi override": (lambda c: c.card_with(classes=[*c.card["classes"][:-1], "x\u202ey"]), None,
                                        [], ["class 9"]),
    "class name with a tab": (lambda c: c.card_with(classes=["a\tb", *c.card["classes"][1:]]), None, [], ["class 0"]),
    "manifest not json": (lambda c: (c.file("x.plan", b"e"), c.file("x.plan.json", b"{\"format\": "))[0], None, [],
                          ["not valid UTF-8 JSON"]),
    "manifest missing hash": (lambda c: c.plan(plan_sha256=None), None, [], ["plan_sha256"]),
    "signed plan": (_signed_plan, None, [], ["cannot verify signatures"]),
    "manifest nested a million deep": (lambda c: (c.file("d.plan", b"e"), c.file("d.plan.json", b"[" * 10**6))[0],
                                       None, [], ["not valid UTF-8 JSON"]),
    "card nested 200,000 deep": (lambda c: _onnx_with_card(c.models["fp32"], c.tmp / "d.onnx",
                                                           '{"a":' * 200000 + "1" + "}" * 200000), None, [],
                                 ["card format"]),
    "unknown option": (None, None, ["--frobnicate"], ["unknown option --frobnicate"]),
    "topk not a number": (None, None, ["--topk", "five"], ["--topk", "integer"]),
    "topk zero": (None, None, ["--topk", "0"], ["--topk"]),
    "batch too large": (None, None, ["--batch", "99999999999"], ["--batch"]),
    "option without value": (None, None, ["--topk"], ["needs a value"]),
    "unknown backend": (None, None, ["--backend", "tensorflow"], ["--backend", "onnxruntime or openvino"]),
    "unknown precision hint": (None, None, ["--backend", "openvino", "--precision-hint", "fp8"],
                               ["--precision-hint", "f32 or bf16"]),
    "precision hint without openvino": (None, None, ["--precision-hint", "bf16"], ["applies to --backend openvino"]),
    "a plan with a CPU backend": (lambda c: c.plan(), None, ["--backend", "openvino"],
                                  ["runs .onnx files", "TensorRT"]),
}


def run_case(exe, name: str, tmp_path: Path, models: dict, cifar_dir: Path, env=None, backend=()):
    """One case; ``backend``: arguments that pick the backend (test_openvino.py runs the model cases
    through OpenVINO)."""
    c = Corpus(tmp_path, models, cifar_dir)
    make_model, make_image, extra, words = CASES[name]
    extra = [*backend, *extra]
    (tmp_path / "dir.onnx").mkdir(exist_ok=True)
    model = make_model(c) if make_model else models["fp32"]
    image = make_image(c) if make_image else c.good
    if name == "option without value":
        run = classify(exe, model, [], image, *extra, env=env)  # the option comes last
    else:
        run = classify(exe, model, [], *extra, image, env=env)
    return run, words


def check_one_line(run, words) -> None:
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), run.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(cpp_models, cpp_exe, cifar_dir, tmp_path, name):
    run, words = run_case(cpp_exe, name, tmp_path, cpp_models, cifar_dir)
    check_one_line(run, words)


def test_good_plan_passes_the_manifest_check_then_needs_tensorrt(cpp_models, cpp_exe, cifar_dir, tmp_path):
    """Plans whose bytes match the manifest pass the check (so the SHA-256 agrees with hashlib for
    every padding case) and then meet the missing TensorRT backend; one flipped bit is refused."""
    import random

    c = Corpus(tmp_path, cpp_models, cifar_dir)
    rng = random.Random(3)
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, (1 << 20) + 3):
        data = bytes(rng.getrandbits(8) for _ in range(n)) if n < 5000 else rng.randbytes(n)
        plan = c.plan(data)
        run = classify(cpp_exe, plan, [c.good])
        check_one_line(run, ["no TensorRT backend"])
        if n:
            plan.write_bytes(bytes([data[0] ^ 0x80]) + data[1:])
            check_one_line(classify(cpp_exe, plan, [c.good]), ["does not match the sha256"])


def test_help_and_usage(cpp_models, cpp_exe, cifar_dir):
    import subprocess

    out = subprocess.run([str(cpp_exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--model FILE" in out.stdout and "--topk" in out.stdout
    for args, words in ((["x.png"], ["--model FILE is required"]), (["--model", str(cpp_models["fp32"])],
                                                                     ["no images given"])):
        proc = subprocess.run([str(cpp_exe), *args], capture_output=True, text=True)
        check_one_line(proc, words)


def test_one_bad_image_among_good_ones_prints_nothing(cpp_models, cpp_exe, cifar_dir, tmp_path):
    good = sorted((cifar_dir / "test").glob("*/*.png"))[:40]
    bad = tmp_path / "bad.png"
    bad.write_bytes(good[0].read_bytes()[:100])
    dump = tmp_path / "x.bin"
    run = classify(cpp_exe, cpp_models["fp32"], [*good, bad, *good], "--dump-input", dump, "--batch", "8")
    check_one_line(run, ["bad.png"])
    assert not dump.exists()  # no half-written tensor file is left behind


def test_a_mismatched_plan_loads_only_with_allow_unverified(cpp_models, cpp_exe, cifar_dir, tmp_path):
    """The Python policy: refused by default; --allow-unverified warns once and goes on (here to the
    missing TensorRT backend)."""
    c = Corpus(tmp_path, cpp_models, cifar_dir)
    plan = _tampered_plan(c)
    check_one_line(classify(cpp_exe, plan, [c.good]), ["modified", "--allow-unverified"])
    run = classify(cpp_exe, plan, [c.good], "--allow-unverified")
    lines = run.stderr.splitlines()
    assert run.returncode == 2 and len(lines) == 2, run.stderr
    assert lines[0].startswith("wrn-classify: warning:") and "loading it unverified" in lines[0]
    assert "no TensorRT backend" in lines[1]


@pytest.mark.parametrize("case", ["existing file", "the image", "a link to the image", "the manifest"])
def test_dump_input_never_replaces_without_force(case, cpp_models, cpp_exe, cifar_dir, tmp_path):
    import os
    import shutil

    image = tmp_path / "in.png"
    shutil.copy(min((cifar_dir / "test").glob("*/*.png")), image)
    model = cpp_models["fp32"]
    dump = {"existing file": tmp_path / "old.bin", "the image": image, "a link to the image": tmp_path / "l.bin",
            "the manifest": Path(str(model) + ".json")}[case]
    if case == "existing file":
        dump.write_bytes(b"keep me")
    elif case == "a link to the image":
        os.symlink(image, dump)
    elif case == "the manifest":
        model = Corpus(tmp_path, cpp_models, cifar_dir).plan()
        dump = Path(str(model) + ".json")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for force in ([], ["--force"]):
        run = classify(cpp_exe, model, [image], "--dump-input", dump, *force)
        if case == "existing file" and force:
            assert run.returncode == 0 and dump.stat().st_size == 3 * 32 * 32 * 4
            break
        check_one_line(run, ["--dump-input", "exists" if case == "existing file" else "is the input"])
        assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_class_names_with_markup_print_as_they_are(cpp_models, cpp_exe, cifar_dir, tmp_path):
    """Markup and separators other than tab and newline are allowed in class names (the Python rule):
    the text output shows them verbatim, one image a line; the JSON output reads back the same names."""
    c = Corpus(tmp_path, cpp_models, cifar_dir)
    names = ["<b>cat", "a|b", "*x*", "q\"uote", "x & y", "ünï 猫", "c7", "c8", "c9", "c10"]
    model = c.card_with(classes=names)
    text = classify(cpp_exe, model, [c.good, c.good], "--topk", "10")
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 2, text.stderr
    assert all(n in text.stdout.splitlines()[0] for n in names)
    out = classify(cpp_exe, model, [c.good], "--json", "--topk", "10")
    assert out.returncode == 0, out.stderr
    assert sorted(t["class"] for t in json.loads(out.stdout)["images"][0]["top"]) == sorted(names)
