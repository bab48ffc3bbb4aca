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


def _tiny_graph(float_type) -> bytes:
    """x + DequantizeLinear(int8 weights) in ``float_type``: the smallest Q/DQ graph."""
    from onnx import TensorProto, helper, numpy_helper

    dtype = np.float16 if float_type == TensorProto.FLOAT16 else np.float32
    inits = [numpy_helper.from_array(np.array([1, -2, 3, 127], dtype=np.int8), "q"),
             numpy_helper.from_array(np.array(0.5, dtype=dtype), "scale")]
    nodes = [helper.make_node("DequantizeLinear", ["q", "scale"], ["w"]), helper.make_node("Add", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", float_type, [1, 4])],
                              [helper.make_tensor_value_info("y", float_type, [1, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]).SerializeToString()


@pytest.mark.parametrize("fp16", [True, False])
def test_qdq_graphs_with_an_fp16_remainder_run_as_written_on_the_cpu(fp16):
    """ONNX Runtime's CPU optimizer rewrites Q/DQ graphs with FP16 tensors wrongly (docs/int8.md), so
    the runner turns it off for them, and only for them."""
    import onnxruntime as ort
    from onnx import TensorProto

    runner = OrtRunner(_tiny_graph(TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT))
    with runner:
        level = runner.session.get_session_options().graph_optimization_level
        out = runner.session.run(None, {"x": np.zeros((1, 4), dtype=np.float16 if fp16 else np.float32)})[0]
    assert (level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL) is fp16
    assert out.tolist() == [[0.5, -1.0, 1.5, 63.5]]
