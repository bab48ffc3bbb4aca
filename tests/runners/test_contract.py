"""One contract, every runner: lifecycle, metadata, batch range, timing and the same answers.

The TensorRT runner takes part through the 11.x stand-in (tests/engine/fake_tensorrt.py): this
checks wrn-deploy's runner code, not TensorRT."""

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.engine.conftest import fake_trt  # noqa: F401 - a fixture used below
from tests.export.conftest import make_checkpoint
from wrn_deploy.runners import TensorMeta, runner_for


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    ckpt = make_checkpoint(root / "c.safetensors", arch="wrn-10-1", dropout=0.0)
    run_cli("export", ckpt, "-o", root / "m.onnx", "--no-verify")
    run_cli("export", ckpt, "-o", root / "b4.fp16.onnx", "--fp16", "--fp16-io", "--batch", "4", "--no-verify")
    return root


def _module(root):
    from wrn_deploy.arch.normalize import Normalized
    from wrn_deploy.checkpoint import model_from_checkpoint

    model, card = model_from_checkpoint(root / "c.safetensors")
    return Normalized(model, card.mean, card.std)


# name -> (make the runner from the models folder, expected input dtype, batch range, tolerance)
CASES = {
    "torch checkpoint": (lambda r: runner_for(r / "c.safetensors"), "float32", (1, None), 0),
    "torch module": (lambda r: runner_for(_module(r)), "float32", (1, None), 0),
    "torch callable": (lambda r: runner_for(lambda: _module(r)), "float32", (1, None), 0),
    "torch fp16": (lambda r: runner_for(r / "c.safetensors", precision="fp16"), "float16", (1, None), 5e-2),
    "onnxruntime": (lambda r: runner_for(r / "m.onnx"), "float32", (1, None), 1e-4),
    "onnxruntime bytes": (lambda r: runner_for_bytes(r / "m.onnx"), "float32", (1, None), 1e-4),
    "onnxruntime fixed batch fp16": (lambda r: runner_for(r / "b4.fp16.onnx"), "float16", (4, 4), 5e-2),
    "tensorrt (stand-in)": (lambda r: trt_runner(r), "float32", (1, 16), 1e-4),
    "openvino f32": (lambda r: ov_runner(r / "m.onnx"), "float32", (1, None), 1e-4),
    # bf16 where the CPU has it; elsewhere the plugin computes in f32 and the bound holds all the more
    "openvino bf16": (lambda r: ov_runner(r / "m.onnx", "bf16"), "float32", (1, None), 5e-2),
    "openvino fixed batch fp16": (lambda r: ov_runner(r / "b4.fp16.onnx"), "float16", (4, 4), 5e-2),
}


def ov_runner(path, precision="f32"):
    pytest.importorskip("openvino", reason="OpenVINO not installed (the 'openvino' extra)")
    return runner_for(path, runtime="openvino", precision_hint=precision, threads=2)


def runner_for_bytes(path):
    from wrn_deploy.runners.ort_runner import OrtRunner

    return OrtRunner(lambda: path.read_bytes())


def trt_runner(root):
    from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine
    from wrn_deploy.runners.trt_runner import TrtRunner

    plan = root / "m.plan"
    if not plan.exists():
        build_engine(root / "m.onnx", plan, BuildOptions(min_batch=1, opt_batch=8, max_batch=16))
    return TrtRunner(plan, device="cpu")


@pytest.mark.parametrize("case", CASES)
def test_runner_contract(case, models, fake_trt):  # noqa: F811 - fake_trt is the fixture
    make, dtype, batch_range, tol = CASES[case]
    _holds_the_contract(make(models), models, dtype, batch_range, tol)


@pytest.fixture(scope="module")
def served(models, tmp_path_factory):
    """m.onnx in a real tritonserver (Python backend, batches up to 8)."""
    from wrn_deploy.triton.config import ServeOptions
    from wrn_deploy.triton.repository import write_repository
    from wrn_deploy.triton.server import find_tritonserver, served_repository

    if find_tritonserver() is None:
        pytest.skip("no tritonserver here (pip install 'wrn-deploy[serve]')")
    repo = tmp_path_factory.mktemp("contract-repo")
    write_repository(models / "m.onnx", repo, ServeOptions("m", "python", max_batch=8, instances=1), check_load=False)
    with served_repository(repo, log=repo.parent / "server.log") as server:
        yield server


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_triton_runner_contract(protocol, models, served):
    from wrn_deploy.runners.triton_runner import TritonRunner

    url = served.http if protocol == "http" else served.grpc
    _holds_the_contract(TritonRunner(url, "m", protocol), models, "float32", (1, 8), 1e-4)


def _holds_the_contract(runner, models, dtype, batch_range, tol):
    images = torch.rand(21, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with runner_for(models / "c.safetensors") as ref_runner:
        ref = ref_runner.infer(images)

    assert not runner.is_active
    with pytest.raises(RuntimeError, match="activate"):
        runner.infer(images)
    with pytest.raises(RuntimeError, match="activate"):
        runner.inputs()

    with runner:
        (inp,), (out,) = runner.inputs(), runner.outputs()
        assert isinstance(inp, TensorMeta) and isinstance(out, TensorMeta)
        assert inp.dtype == dtype and inp.shape[1] == 3 and inp.shape[2:] in ((32, 32), (-1, -1))
        assert out.shape[-1] in (10, -1) and len(out.shape) == 2
        assert runner.batch_range() == batch_range
        assert inp.shape[0] == (batch_range[0] if batch_range[0] == batch_range[1] else -1)
        got = runner.infer(images[:7])             # below a fixed batch: padded; above: split
        assert got.dtype == np.float32 and got.shape == (7, 10)
        calls = len(runner.inference_times)
        assert calls >= 1 and all(t > 0 for t in runner.inference_times)
        everything = runner.infer_all(images, batch=8)
        assert len(runner.inference_times) > calls and runner.last_inference_time() > 0
    assert not runner.is_active
    with pytest.raises(RuntimeError, match="activate"):
        runner.infer(images)
    np.testing.assert_allclose(got, ref[:7], rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(everything, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert (everything.argmax(1) == ref.argmax(1)).mean() >= (0.95 if tol > 1e-3 else 1.0)


def test_runner_for_picks_the_runner_by_artifact(models, tmp_path):
    from wrn_deploy.errors import UserError
    from wrn_deploy.runners.ort_runner import OrtRunner
    from wrn_deploy.runners.torch_runner import TorchRunner
    from wrn_deploy.runners.trt_runner import TrtRunner

    assert isinstance(runner_for(models / "c.safetensors"), TorchRunner)
    assert isinstance(runner_for(str(models / "m.onnx")), OrtRunner)
    assert isinstance(runner_for(tmp_path / "x.plan"), TrtRunner)
    with pytest.raises(UserError, match="unknown artifact type"):
        runner_for(tmp_path / "x.bin")
    with pytest.raises(UserError, match="OpenVINO runs ONNX files, not a checkpoint"):
        runner_for(models / "c.safetensors", runtime="openvino")
    with pytest.raises(UserError, match="runtime 'tvm'"):
        runner_for(models / "m.onnx", runtime="tvm")


def test_openvino_runner_sets_what_it_runs_with(models):
    """Precision, threads, streams and the performance hint are set, not left to the plugin (whose
    default precision is bf16 on AMX CPUs); the precision the compiled model uses is read back."""
    pytest.importorskip("openvino", reason="OpenVINO not installed (the 'openvino' extra)")
    from wrn_deploy.cpuinfo import native_bf16
    from wrn_deploy.errors import UserError
    from wrn_deploy.runners.openvino_runner import OpenVinoRunner

    r = OpenVinoRunner(models / "m.onnx", "bf16", threads=1)
    assert r.config() == {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
                          "PERFORMANCE_HINT": "LATENCY"}
    with r:
        assert r.compiled.get_property("INFERENCE_NUM_THREADS") == 1
        assert r.compiled.get_property("NUM_STREAMS") == 1
        assert r.ran_precision == ("bf16" if native_bf16() else "f32")
    with runner_for(models / "m.onnx", runtime="openvino") as f32:
        assert f32.ran_precision == "f32"
    with pytest.raises(UserError, match="choose one of f32, bf16"):
        OpenVinoRunner(models / "m.onnx", "fp16")
    with pytest.raises(UserError, match="does not exist"):
        OpenVinoRunner(models / "nope.onnx").activate()
    (models / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match="OpenVINO cannot load"):
        OpenVinoRunner(models / "junk.onnx").activate()
