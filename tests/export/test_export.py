"""The export command end to end: the file, its graph, its metadata, its verification, bad input."""

import json

import numpy as np
import onnx
import pytest

from tests.conftest import run_cli
from tests.export.conftest import make_checkpoint, resave
from wrn_deploy.card import read_card
from wrn_deploy.errors import UserError
from wrn_deploy.export.checkpoint_to_onnx import ExportOptions, export_checkpoint
from wrn_deploy.runners.ort_runner import OrtRunner

FAST = ["--verify-images", "64"]


@pytest.fixture(scope="module")
def fp32(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32") / "model.onnx"
    run_cli("export", checkpoint, "-o", out, *FAST)
    return out


def test_fp32_graph_is_clean_and_self_contained(fp32):
    assert sorted(p.name for p in fp32.parent.iterdir()) == ["model.onnx", "model.report.json"]
    model = onnx.load(str(fp32))
    ops = [n.op_type for n in model.graph.node]
    assert "Dropout" not in ops and "BatchNormalization" not in ops
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert model.opset_import[0].version == 18
    onnx.checker.check_model(model, full_check=True)


def test_metadata_carries_the_card_with_its_lineage(fp32, checkpoint):
    card = read_card(fp32)
    assert card.kind == "onnx" and card.arch == "wrn-10-2" and str(card.precision) == "fp32"
    assert card.num_classes == 10 and card.mean == (0.5, 0.5, 0.5)
    assert card.input.name == "images" and card.input.normalized_in_graph and card.input.batch is None
    from wrn_deploy.fileio import sha256_file

    assert card.parent.kind == "checkpoint" and card.parent.sha256 == sha256_file(checkpoint)
    assert card.origin == card.parent  # the checkpoint is the root of the lineage
    assert card.step.name == "export" and "onnxruntime" in card.step.versions and card.step.options["opset"] == 18


def test_report_has_folding_graph_and_verification(fp32):
    rep = json.loads(fp32.with_suffix(".report.json").read_text())
    assert rep["graph"]["dropout_nodes"] == 0 and rep["graph"]["batchnorm_after_conv"] == 0
    assert len(rep["prepare"]["conv_bn_folded"]) == 4 and len(rep["prepare"]["dropout_removed"]) == 3
    v = rep["verification"]
    assert v["passed"] and v["max_rel_diff"] <= 1e-4 and v["top1_agreement_vs_torch_fp32"] == 100.0
    assert rep["graph"]["operators"]["Conv"] == 10


def test_dynamic_batch_runs_any_size(fp32):
    import torch

    with OrtRunner(fp32) as runner:
        for n in (1, 5, 33):
            assert runner.infer(torch.rand(n, 3, 32, 32)).shape == (n, 10)


def test_fp16_has_fp16_compute_and_fp32_edges(checkpoint, tmp_path):
    out = tmp_path / "m.fp16.onnx"
    proc = run_cli("export", checkpoint, "-o", out, "--fp16", *FAST)
    assert "vs PyTorch FP16" in proc.stdout
    model = onnx.load(str(out))
    types = {i.name: i.data_type for i in model.graph.initializer}
    conv_weights = [n.input[1] for n in model.graph.node if n.op_type == "Conv"]
    assert all(types[w] == onnx.TensorProto.FLOAT16 for w in conv_weights)
    assert types["mean"] == types["std"] == onnx.TensorProto.FLOAT  # normalisation stays float32
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    rep = json.loads(out.with_suffix(".report.json").read_text())
    assert rep["verification"]["top1_agreement_vs_torch_fp16"] >= 99 and str(read_card(out).precision) == "fp16"


def test_fp16_io_and_fixed_batch(checkpoint, tmp_path):
    out = tmp_path / "io16.onnx"
    run_cli("export", checkpoint, "-o", out, "--fp16", "--fp16-io", "--batch", "4", *FAST)
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_failed_verification_names_the_numbers_and_leaves_nothing(checkpoint, tmp_path, monkeypatch):
    import wrn_deploy.export.verify as verify

    class Off(OrtRunner):  # an ONNX Runtime whose logits are all 0.5 too high
        def _infer(self, images):
            return super()._infer(images) + 0.5

    monkeypatch.setattr(verify, "OrtRunner", Off)
    out = tmp_path / "bad.onnx"
    with pytest.raises(UserError, match="verification failed.*max_rel_diff"):
        export_checkpoint(checkpoint, out, ExportOptions(verify_images=16))
    assert list(tmp_path.iterdir()) == []


def test_weights_beyond_fp16_range_are_refused(tmp_path):
    import torch
    from safetensors.torch import load_file

    path = make_checkpoint(tmp_path / "big.safetensors")
    tensors = load_file(path)
    tensors["model.fc.weight"][0, 0] = 1e6
    resave(path, path, tensors)
    with pytest.raises(UserError, match="65504"):
        export_checkpoint(path, tmp_path / "m.onnx", ExportOptions(fp16=True, verify=False))
    assert not (tmp_path / "m.onnx").exists()
    assert torch.isfinite(tensors["model.fc.weight"]).all()


@pytest.mark.parametrize("case", ["missing", "corrupt", "mismatch", "opset", "folder"])
def test_bad_input_is_one_line_and_leaves_no_onnx(case, checkpoint, tmp_path):
    ckpt, out, extra = checkpoint, tmp_path / "m.onnx", []
    if case == "missing":
        ckpt = tmp_path / "nope.safetensors"
    elif case == "corrupt":
        ckpt = tmp_path / "corrupt.safetensors"
        ckpt.write_bytes(checkpoint.read_bytes()[:1000])
    elif case == "mismatch":  # a wrn-10-2 card over wrn-10-1 weights
        from safetensors.torch import load_file

        other = make_checkpoint(tmp_path / "w1.safetensors", arch="wrn-10-1")
        ckpt = resave(checkpoint, tmp_path / "mismatch.safetensors", load_file(other))
    elif case == "opset":
        extra = ["--opset", "11"]
    else:
        out = tmp_path / "missing" / "m.onnx"
    proc = run_cli("export", ckpt, "-o", out, *extra, check=False)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.onnx"))


def test_fixed_batch_model_runs_any_number_of_images(fp32, checkpoint, tmp_path):
    import torch

    from wrn_deploy.runners.ort_runner import OrtRunner

    fixed = tmp_path / "b4.onnx"
    run_cli("export", checkpoint, "-o", fixed, "--batch", "4", "--no-verify")
    images = torch.rand(10, 3, 32, 32)
    with OrtRunner(fixed) as a, OrtRunner(fp32) as b:
        assert a.batch_range() == (4, 4) and b.batch_range() == (1, None)
        np.testing.assert_allclose(a.infer(images), b.infer(images), rtol=1e-5, atol=1e-5)
