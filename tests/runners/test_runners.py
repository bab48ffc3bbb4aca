import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.export.conftest import make_checkpoint
from wrn_deploy.errors import UserError
from wrn_deploy.runners.ort_runner import OrtRunner
from wrn_deploy.runners.torch_runner import TorchRunner


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("runners") / "c.safetensors")


def test_torch_runner_precisions_on_cpu(checkpoint):
    images = torch.rand(16, 3, 32, 32)
    with TorchRunner(checkpoint) as fp32:
        ref = fp32.infer(images)
    for precision, tol in (("fp16", 2e-2), ("bf16", 1.5e-1)):
        with TorchRunner(checkpoint, precision=precision) as r:
            out = r.infer(images)
        assert out.dtype == np.float32 and out.shape == (16, 10)
        assert np.abs(out - ref).max() / np.abs(ref).max() < tol


def test_runner_lifecycle(checkpoint):
    runner = TorchRunner(checkpoint)
    with pytest.raises(RuntimeError, match="activate"):
        runner.infer(torch.rand(1, 3, 32, 32))
    with runner:
        assert runner.is_active and runner.net is not None
    assert not runner.is_active and runner.net is None


def test_onnxruntime_runner_agrees_with_torch(checkpoint, tmp_path):
    run_cli("export", checkpoint, "-o", tmp_path / "m.onnx", "--no-verify")
    images = torch.rand(70, 3, 32, 32)
    with OrtRunner(tmp_path / "m.onnx") as o, TorchRunner(checkpoint) as t:
        np.testing.assert_allclose(o.infer_all(images, 32), t.infer_all(images, 32), rtol=1e-4, atol=1e-4)


def test_missing_execution_provider_names_the_gpu_extra(tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed")
    with pytest.raises(UserError, match="'gpu' extra"):
        OrtRunner(tmp_path / "m.onnx", provider="cuda").activate()


def test_onnxruntime_spin_waiting_is_off_unless_asked(checkpoint, tmp_path):
    run_cli("export", checkpoint, "-o", tmp_path / "m.onnx", "--no-verify")
    x = torch.rand(2, 3, 32, 32)
    got = {}
    for spin in (None, True, False):
        with OrtRunner(tmp_path / "m.onnx", spin=spin, threads=1) as r:
            opts = r.session.get_session_options()
            got[spin] = (opts.get_session_config_entry("session.intra_op.allow_spinning"), opts.intra_op_num_threads)
            logits = r.infer(x)
        got[spin] += (logits.round(4).tolist(),)
    assert got[None][:2] == ("0", 1) and got[True][0] == "1" and got[False][0] == "0"
    assert got[None][2] == got[True][2] == got[False][2]  # the setting changes waiting, not answers
