"""Build and run logic through the TensorRT 11.x stand-in (tests/engine/fake_tensorrt.py).
These check wrn-deploy's own code paths; they are not TensorRT verification."""

import json

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.engine import fake_tensorrt
from wrn_deploy import plan_trust as M
from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine
from wrn_deploy.errors import UserError
from wrn_deploy.runners.ort_runner import OrtRunner
from wrn_deploy.runners.trt_runner import TrtRunner


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    from tests.export.conftest import make_checkpoint

    root = tmp_path_factory.mktemp("engine")
    ckpt = make_checkpoint(root / "c.safetensors")
    run_cli("export", ckpt, "-o", root / "m.onnx", "--no-verify")
    return root / "m.onnx"


@pytest.fixture
def plan(fake_trt, onnx_model, tmp_path):
    opts = BuildOptions(min_batch=1, opt_batch=8, max_batch=16, timing_cache=str(tmp_path / "timing.cache"))
    build_engine(onnx_model, tmp_path / "m.plan", opts)
    return tmp_path / "m.plan"


def test_build_writes_plan_manifest_and_timing_cache(plan, onnx_model, tmp_path):
    man = json.loads(M.manifest_path(plan).read_text())
    assert man["tensorrt_version"] == "11.4.0.106" and man["compute_capability"] == [9, 0]
    assert man["profile"] == {"min": 1, "opt": 8, "max": 16} and man["card"]["arch"] == "wrn-10-2"
    assert man["plan_bytes"] == plan.stat().st_size and len(man["plan_sha256"]) == 64
    header = json.loads(plan.read_bytes()[12:12 + int.from_bytes(plan.read_bytes()[8:12], "little")])
    assert header["flags"] == []                       # precision comes from the ONNX, no builder flag
    assert header["profile"]["images"] == [[1, 3, 32, 32], [8, 3, 32, 32], [16, 3, 32, 32]]
    assert (tmp_path / "timing.cache").read_bytes() == b"timing-cache-v1"


def test_compatibility_options_reach_the_builder(fake_trt, onnx_model, tmp_path):
    build_engine(onnx_model, tmp_path / "vc.plan", BuildOptions(version_compatible=True, hw_compat="ampere_plus"))
    blob = (tmp_path / "vc.plan").read_bytes()
    header = json.loads(blob[12:12 + int.from_bytes(blob[8:12], "little")])
    assert header["flags"] == ["VERSION_COMPATIBLE"] and header["hw"] == "AMPERE_PLUS"


def test_runner_matches_onnxruntime_for_any_batch(plan, onnx_model):
    images = torch.rand(40, 3, 32, 32)
    with OrtRunner(onnx_model) as ort:
        expected = ort.infer(images)
    with TrtRunner(plan, device="cpu") as runner:
        assert runner.batch_range() == (1, 16)
        for n in (1, 7, 16):
            np.testing.assert_allclose(runner.infer(images[:n]), expected[:n], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runner.infer(images), expected, rtol=1e-5, atol=1e-5)  # split over the profile
    assert not runner.is_active and runner.engine is None


def test_modified_or_truncated_plan_is_refused_before_loading(plan):
    data = bytearray(plan.read_bytes())
    data[100] ^= 0xFF
    plan.write_bytes(bytes(data))
    with pytest.raises(UserError, match="modified"):
        TrtRunner(plan, device="cpu").activate()
    plan.write_bytes(bytes(data[:-10]))
    with pytest.raises(UserError, match="truncated"):
        TrtRunner(plan, device="cpu").activate()


def test_plan_without_manifest_is_refused_unless_allowed(plan, monkeypatch):
    M.manifest_path(plan).unlink()
    calls = []
    monkeypatch.setattr(fake_tensorrt.Runtime, "deserialize_cuda_engine",
                        lambda self, data, real=fake_tensorrt.Runtime.deserialize_cuda_engine: calls.append(1)
                        or real(self, data))
    with pytest.raises(UserError, match="no manifest.*--allow-unverified accepts the risk"):
        TrtRunner(plan, device="cpu").activate()
    assert not calls  # refused before TensorRT saw a byte
    warnings = []
    with TrtRunner(plan, device="cpu", warn=warnings.append, allow_unverified=True) as runner:
        assert runner.infer(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert len(warnings) == 1 and "no manifest" in warnings[0] and calls == [1]
    plan.write_bytes(b"garbage")
    with pytest.raises(UserError, match="could not deserialize"):
        TrtRunner(plan, device="cpu", warn=warnings.append, allow_unverified=True).activate()


def test_a_mismatched_plan_loads_only_when_allowed(plan):
    data = bytearray(plan.read_bytes())
    data[-3] ^= 0xFF  # in the weights: the stand-in still deserializes it
    plan.write_bytes(bytes(data))
    warnings = []
    with TrtRunner(plan, device="cpu", warn=warnings.append, allow_unverified=True):
        pass
    assert "modified" in warnings[0] and "--allow-unverified" in warnings[0]


def test_other_tensorrt_or_gpu_gets_one_clear_sentence(plan):
    man = json.loads(M.manifest_path(plan).read_text())
    man.update(tensorrt_version="10.16.1.11", compute_capability=[8, 6], gpu="NVIDIA A10")
    M.manifest_path(plan).write_text(json.dumps(man))
    with pytest.raises(UserError) as e:
        TrtRunner(plan, device="cpu").activate()
    msg = e.value.format_message()
    assert "TensorRT 10.16.1.11 on sm_86 (NVIDIA A10)" in msg and "TensorRT 11.4.0.106 on sm_90" in msg


def test_version_compatible_rules():
    man = {"tensorrt_version": "10.16.1", "compute_capability": [8, 0], "gpu": "A100",
           "build": {"version_compatible": True, "hardware_compatibility": "ampere_plus"}}
    M.check_compatible(man, "11.4.0", (9, 0), "H100")          # 10.x VC plans run on 11.x; Ampere+ on Hopper
    with pytest.raises(UserError):
        M.check_compatible(dict(man, build={}), "11.4.0", (9, 0), "H100")
    with pytest.raises(UserError):
        M.check_compatible(dict(man, tensorrt_version="11.4.0"), "11.1.0", (9, 0), "H100")  # not backwards


def test_signed_plans(fake_trt, onnx_model, tmp_path):
    run_cli("keygen", tmp_path / "k.pem", tmp_path / "k.pub")
    run_cli("keygen", tmp_path / "other.pem", tmp_path / "other.pub")
    build_engine(onnx_model, tmp_path / "s.plan", BuildOptions(), sign_key=tmp_path / "k.pem")
    with TrtRunner(tmp_path / "s.plan", verify_key=tmp_path / "k.pub", device="cpu") as r:
        r.infer(torch.rand(1, 3, 32, 32))
    with pytest.raises(UserError, match="does not verify"):
        TrtRunner(tmp_path / "s.plan", verify_key=tmp_path / "other.pub", device="cpu").activate()
    man = M.manifest_path(tmp_path / "s.plan")
    man.write_text(man.read_text().replace('"max": 256', '"max": 512'))
    with pytest.raises(UserError, match="does not verify"):
        TrtRunner(tmp_path / "s.plan", verify_key=tmp_path / "k.pub", device="cpu").activate()


def test_a_version_compatible_plan_runs_on_the_lean_module_where_the_full_one_is_absent(fake_trt, onnx_model,
                                                                                       tmp_path, monkeypatch):
    import sys

    build_engine(onnx_model, tmp_path / "vc.plan", BuildOptions(version_compatible=True))
    build_engine(onnx_model, tmp_path / "plain.plan", BuildOptions())
    monkeypatch.setitem(sys.modules, "tensorrt", None)           # no full runtime here
    monkeypatch.setitem(sys.modules, "tensorrt_lean", fake_trt)  # NVIDIA's lean runtime module (its stand-in)
    with TrtRunner(tmp_path / "vc.plan", device="cpu") as runner:
        assert runner.trt is fake_trt and runner.infer(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UserError, match="lean runtime here runs only plans built with --version-compatible"):
        TrtRunner(tmp_path / "plain.plan", device="cpu").activate()  # the lean runtime runs only VC plans
