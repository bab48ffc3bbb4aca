"""Model repositories: the config Triton would read, checked by its schema and against the artifact."""

import json
import os
import stat
import sys

import pytest

from tests.conftest import run_cli
from wrn_deploy.errors import UserError

pytest.importorskip("tritonclient.grpc", reason="needs tritonclient (the 'serve' or 'triton' extra)")


def test_native_onnx_repository(served_onnx, tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    proc = run_cli("triton", served_onnx, "-o", tmp_path / "repo", "--name", "wrn", "--max-batch", "16",
                   "--instances", "2", process=True)
    folder = tmp_path / "repo" / "wrn"
    cfg = text_format.Parse((folder / "config.pbtxt").read_text(), mc.ModelConfig())
    assert cfg.backend == "onnxruntime" and cfg.max_batch_size == 16
    assert list(cfg.input[0].dims) == [3, 32, 32] and cfg.input[0].name == "images"
    assert list(cfg.output[0].dims) == [10] and cfg.output[0].label_filename == "labels.txt"
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4, 8, 16]
    assert cfg.instance_group[0].count == 2 and cfg.model_warmup[0].inputs["images"].zero_data
    assert len((folder / "labels.txt").read_text().splitlines()) == 10
    card = json.loads((folder / "card.json").read_text())
    assert card["input"]["normalized_in_graph"] is True  # clients send [0, 1] RGB, nothing more
    assert (folder / "1" / "model.onnx").read_bytes() == served_onnx.read_bytes()
    for p in [folder, *folder.rglob("*")]:  # readable by a server running as another user
        assert p.stat().st_mode & stat.S_IROTH, p
    assert "not checked" in proc.stdout or "loaded" in proc.stdout


def test_python_backend_for_a_checkpoint(tmp_path):
    from tests.export.conftest import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "c.safetensors", arch="wrn-10-1")
    run_cli("triton", ckpt, "--repo", tmp_path / "repo", "--backend", "python", "--name", "ck", "--no-check-load")
    version = tmp_path / "repo" / "ck" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["__pycache__", "model.py", "model.safetensors"]
    assert (version / "__pycache__").is_file()  # a file, so the server's Python cannot leave bytecode there
    assert 'backend: "python"' in (tmp_path / "repo" / "ck" / "config.pbtxt").read_text()


@pytest.mark.parametrize("case,fragment", [
    ("checkpoint native", "no native Triton backend"),
    ("fixed batch", "batches of at least 4"),
    ("exists", "exists; pass --force"),
    ("bad name", "model name"),
    ("inside", "write the repository elsewhere"),
])
def test_refused_repositories(case, fragment, served_onnx, tmp_path):
    from tests.export.conftest import make_checkpoint

    artifact, extra = served_onnx, []
    if case == "checkpoint native":
        artifact = make_checkpoint(tmp_path / "c.safetensors", arch="wrn-10-1")
    elif case == "fixed batch":
        artifact = tmp_path / "b4.onnx"
        run_cli("export", make_checkpoint(tmp_path / "c.safetensors", arch="wrn-10-1"), "-o", artifact,
                "--batch", "4", "--no-verify")
    elif case == "exists":
        (tmp_path / "repo" / "m").mkdir(parents=True)
        (tmp_path / "repo" / "m" / "keep").write_text("mine")
        extra = ["--name", "m"]
    elif case == "bad name":
        extra = ["--name", "../evil"]
    else:
        (tmp_path / "repo" / "m" / "1").mkdir(parents=True)
        artifact = tmp_path / "repo" / "m" / "1" / "model.onnx"
        artifact.write_bytes(served_onnx.read_bytes())
        extra = ["--name", "m", "--force"]
    proc = run_cli("triton", artifact, "--repo", tmp_path / "repo", *extra, "--no-check-load", check=False)
    assert proc.returncode == 2 and fragment in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "repo").rglob("*") if ".wrn-tmp" in p.name] if (tmp_path / "repo").exists() \
        else True
    if case == "exists":
        assert (tmp_path / "repo" / "m" / "keep").read_text() == "mine"


def test_plan_repository_checks_the_profile(served_onnx, tmp_path, monkeypatch):
    """Through the TensorRT stand-in: a max batch beyond the engine profile is refused."""
    import torch

    from tests.engine import fake_tensorrt
    from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine
    from wrn_deploy.triton.config import ServeOptions
    from wrn_deploy.triton.repository import write_repository

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.as_module())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "stand-in")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    plan = tmp_path / "m.plan"
    build_engine(served_onnx, plan, BuildOptions(opt_batch=8, max_batch=16))
    with pytest.raises(UserError, match="exceeds the artifact's largest batch 16"):
        write_repository(plan, tmp_path / "repo", ServeOptions("p", "native", max_batch=32), check_load=False)
    done = write_repository(plan, tmp_path / "repo", ServeOptions("p", "native", max_batch=16, kind="gpu"),
                            check_load=False)
    names = sorted(p.name for p in (done.folder / "1").iterdir())
    assert names == ["model.plan", "model.plan.json"] and 'backend: "tensorrt"' in done.config
    assert "KIND_GPU" in done.config


def test_schema_errors_name_the_line():
    from wrn_deploy.triton.config import parse

    with pytest.raises(UserError, match=r"2:1 .*not_a_field"):
        parse('name: "x"\nnot_a_field: 3\n', "config.pbtxt")
    with pytest.raises(UserError, match="config.pbtxt"):
        parse('name: "x"\ninstance_group [ { kind: KIND_TPU } ]\n', "config.pbtxt")


def test_umask_applies(served_onnx, tmp_path):
    old = os.umask(0o077)
    try:
        run_cli("triton", served_onnx, "--repo", tmp_path / "repo", "--name", "u", "--no-check-load")
    finally:
        os.umask(old)
    assert (tmp_path / "repo" / "u" / "config.pbtxt").stat().st_mode & 0o777 == 0o600


def test_the_file_record_is_what_serve_checks(served_onnx, tmp_path):
    """triton records every file with its sha256 (relative paths, the same bytes for the same files);
    check_repository accepts exactly that, and with allow_unverified serves a changed one with a
    warning instead of refusing it."""
    from wrn_deploy.triton.files import RECORD, check_repository

    for repo in ("a", "b"):
        run_cli("triton", served_onnx, "-o", tmp_path / repo, "--name", "m", "--backend", "python", "--no-check-load")
    record = (tmp_path / "a" / "m" / RECORD).read_text()
    assert record == (tmp_path / "b" / "m" / RECORD).read_text() and str(tmp_path) not in record
    assert sorted(json.loads(record)["files"]) == ["1/__pycache__", "1/model.onnx", "1/model.py", "card.json",
                                                   "config.pbtxt", "labels.txt"]
    check_repository(tmp_path / "a")
    (tmp_path / "a" / "m" / "1" / "model.py").write_text("print('not ours')\n")
    with pytest.raises(UserError, match="model.py changed.*--allow-unverified serves it anyway"):
        check_repository(tmp_path / "a")
    warnings = []
    check_repository(tmp_path / "a", allow_unverified=True, warn=warnings.append)
    assert len(warnings) == 1 and "model.py" in warnings[0] and "serving it anyway" in warnings[0]


def test_a_plan_is_verified_before_it_is_copied(tmp_path, monkeypatch):
    """triton copies exactly the bytes the trust policy verified; a modified plan needs
    --allow-unverified, and the repository then records what was copied."""
    import hashlib

    from tests.engine import fake_tensorrt
    from tests.export.conftest import make_checkpoint
    from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine

    run_cli("export", make_checkpoint(tmp_path / "c.safetensors", arch="wrn-10-1"), "-o", tmp_path / "m.onnx",
            "--no-verify")
    import torch

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.as_module())  # the stand-in builds the plan
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "stand-in H100")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    build_engine(tmp_path / "m.onnx", tmp_path / "m.plan", BuildOptions(opt_batch=8, max_batch=32))
    run_cli("triton", tmp_path / "m.plan", "-o", tmp_path / "repo", "--name", "p", "--no-check-load")
    copied = tmp_path / "repo" / "p" / "1" / "model.plan"
    assert copied.read_bytes() == (tmp_path / "m.plan").read_bytes()
    data = bytearray((tmp_path / "m.plan").read_bytes())
    data[-2] ^= 1
    (tmp_path / "m.plan").write_bytes(bytes(data))
    proc = run_cli("triton", tmp_path / "m.plan", "-o", tmp_path / "repo", "--name", "q", "--no-check-load",
                   check=False)
    assert proc.returncode == 2 and "modified" in proc.stderr and not (tmp_path / "repo" / "q").exists()
    proc = run_cli("triton", tmp_path / "m.plan", "-o", tmp_path / "repo", "--name", "q", "--no-check-load",
                   "--allow-unverified")
    assert "loading it unverified" in proc.stdout
    files = json.loads((tmp_path / "repo" / "q" / "wrn-deploy-files.json").read_text())["files"]
    assert files["1/model.plan"] == hashlib.sha256(bytes(data)).hexdigest()


def test_openvino_repository(served_onnx, tmp_path):
    """Triton's OpenVINO backend reads the ONNX file itself: the config names it, pads every execution
    to max_batch_size (the backend fixes the batch there), and passes Triton's schema and the
    artifact check; the file record covers it as any other model."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    from wrn_deploy.triton.files import RECORD, check_repository

    proc = run_cli("triton", served_onnx, "-o", tmp_path / "repo", "--name", "ov", "--backend", "openvino",
                   "--max-batch", "8", "--instances", "2")
    folder = tmp_path / "repo" / "ov"
    cfg = text_format.Parse((folder / "config.pbtxt").read_text(), mc.ModelConfig())
    assert cfg.backend == "openvino" and cfg.default_model_filename == "model.onnx" and cfg.max_batch_size == 8
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    assert params["ENABLE_BATCH_PADDING"] == "YES" and params["NUM_STREAMS"] == "1"
    assert params["wrn_deploy.arch"] == "wrn-10-1"
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8]
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, mc.ModelInstanceGroup.KIND_CPU)]
    assert list(cfg.input[0].dims) == [3, 32, 32] and list(cfg.output[0].dims) == [10]
    assert (folder / "1" / "model.onnx").read_bytes() == served_onnx.read_bytes()
    assert sorted(json.loads((folder / RECORD).read_text())["files"]) == ["1/model.onnx", "card.json",
                                                                          "config.pbtxt", "labels.txt"]
    check_repository(tmp_path / "repo")
    # pytriton's server has no openvino backend: the write says it was not loaded (or, in NVIDIA's
    # container, that it was)
    assert "openvino" in proc.stdout and ("not checked" in proc.stdout or "loaded" in proc.stdout)


def test_openvino_config_semantics():
    """What the schema cannot see: the model file, CPU instances and batch padding."""
    from types import SimpleNamespace

    from wrn_deploy.runners.base import TensorMeta
    from wrn_deploy.triton import config as C

    card = SimpleNamespace(input=SimpleNamespace(layout="NCHW"), arch="wrn-10-1", precision="fp32", num_classes=10)
    inp, out = TensorMeta("images", "float32", (-1, 3, 32, 32)), TensorMeta("logits", "float32", (-1, 10))
    text = C.render(card, inp, out, C.ServeOptions("m", "openvino", max_batch=4))
    C.check_semantics(C.parse(text, "c"), card, inp, out, (1, None), "c")
    for old, new, words in (('default_model_filename: "model.onnx"', 'default_model_filename: "model.xml"',
                             "model.onnx"),
                            ("kind: KIND_CPU", "kind: KIND_GPU", "KIND_CPU instances only"),
                            ('"ENABLE_BATCH_PADDING" value { string_value: "YES"', '"ENABLE_BATCH_PADDING" value '
                             '{ string_value: "NO"', "ENABLE_BATCH_PADDING")):
        assert old in text
        with pytest.raises(UserError, match=words):
            C.check_semantics(C.parse(text.replace(old, new), "c"), card, inp, out, (1, None), "c")


def test_render_writes_no_text_that_could_add_fields():
    """Every string pasted into config.pbtxt is checked: a quote in a card's arch or a tensor name
    would end its string and start fields of the writer's choosing."""
    from types import SimpleNamespace

    from wrn_deploy.runners.base import TensorMeta
    from wrn_deploy.triton import config as C

    inp, out = TensorMeta("images", "float32", (-1, 3, 32, 32)), TensorMeta("logits", "float32", (-1, 10))
    card = SimpleNamespace(input=SimpleNamespace(layout="NCHW"), arch="wrn-40-2-B(3,3,3)", precision="int8+fp16")
    C.parse(C.render(card, inp, out, C.ServeOptions("m", "python")), "c")
    evil = 'wrn-10-1" } } model_operations { op_library_filename: "/tmp/x.so'
    for bad_card, bad_inp in ((SimpleNamespace(**{**card.__dict__, "arch": evil}), inp),
                              (card, TensorMeta('images"\n', "float32", (-1, 3, 32, 32))),
                              (SimpleNamespace(**{**card.__dict__, "input": SimpleNamespace(layout="NCHW\nx")}), inp)):
        with pytest.raises(UserError, match="cannot be written into a Triton config|has no Triton format"):
            C.render(bad_card, bad_inp, out, C.ServeOptions("m", "python"))


def test_a_server_without_the_backend_is_refused_before_it_starts(served_onnx, tmp_path):
    """check_backends looks for BACKENDS/NAME, where Triton loads a backend from."""
    from wrn_deploy.triton.server import TritonBinary, check_backends

    run_cli("triton", served_onnx, "-o", tmp_path / "repo", "--name", "ov", "--backend", "openvino", "--no-check-load")
    run_cli("triton", served_onnx, "-o", tmp_path / "repo", "--name", "py", "--backend", "python", "--no-check-load")
    (tmp_path / "backends" / "python").mkdir(parents=True)
    binary = TritonBinary(tmp_path / "tritonserver", tmp_path / "backends", source="PATH")
    with pytest.raises(UserError, match="model ov needs Triton's openvino backend.*no .*backends/openvino"):
        check_backends(tmp_path / "repo", binary)
    check_backends(tmp_path / "repo", binary, models=("py",))  # only the models it will load
    (tmp_path / "backends" / "openvino").mkdir()
    check_backends(tmp_path / "repo", binary)
