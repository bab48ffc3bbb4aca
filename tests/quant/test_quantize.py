"""wrn-deploy quantize on a trained model: the Q/DQ form TensorRT needs, the CPU form, the cache,
the guard, and bad input."""

import hashlib
import json
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.conftest import run_cli
from wrn_deploy.card import read_card
from wrn_deploy.limits import CALIB_METHOD


def _qdq_facts(path) -> dict:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    facts = Counter()
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            facts[f"scale {inits[n.input[1]].dtype}"] += 1
            zp = inits[n.input[2]]
            facts[f"zero {zp.dtype} {'0' if not zp.any() else 'nonzero'}"] += 1
            if n.op_type == "DequantizeLinear" and n.input[0] in inits:
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                facts[f"const dq {inits[n.input[0]].dtype} axis {axis} perchannel {inits[n.input[1]].size > 1}"] += 1
        for i in n.input:
            if i in producer and producer[i].op_type == "DequantizeLinear":
                facts[f"dq feeds {n.op_type}"] += 1
    facts["opset"] = model.opset_import[0].version
    return facts


@pytest.fixture(scope="module")
def tensorrt_int8(trained_onnx, tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    out = root / "m.int8.onnx"
    proc = run_cli("quantize", trained_onnx, "-o", out, "--calib-dir", root / "calib", "--calib-size", "128",
                   "--no-progress")
    return out, root, proc.stdout


def test_tensorrt_form(tensorrt_int8, trained_onnx):
    """The structure with the guard off (the fixture's cached ranges): which layers the guard keeps
    float depends on a few images, whose INT8 answers differ between CPUs (VNNI/AMX vs AVX2)."""
    _, root, _ = tensorrt_int8
    out = root / "unguarded.onnx"
    run_cli("quantize", trained_onnx, "-o", out, "--calib-dir", root / "calib", "--calib-size", "128", "--no-guard",
            "--no-progress")
    f = _qdq_facts(out)
    kinds = {k for k in f if k.startswith("zero")}
    assert kinds == {"zero int8 0"}                                    # signed, symmetric
    assert {k for k in f if k.startswith("const dq")} == {"const dq int8 axis 0 perchannel True"}
    # The default (fusion) placement: every Conv's activation and weight, the residual input of the
    # three residual Adds (the stem's output also reaches the first block's BatchNorm scale through
    # the same pair), and the classifier left float. tests/quant/test_placement.py has the rest.
    assert {k for k in f if k.startswith("dq feeds")} == {"dq feeds Conv", "dq feeds Add", "dq feeds Mul"}
    assert f["dq feeds Conv"] == 2 * 9 and f["dq feeds Add"] == 3 and f["dq feeds Mul"] == 1
    assert {k for k in f if k.startswith("scale")} == {"scale float16"}  # the rest runs in FP16
    assert f["opset"] >= 19
    model = onnx.load(str(out))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer
               if t.name.endswith("bias"))                            # biases stay float (FP16 here)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_card_manifest_and_cache(tensorrt_int8, trained_onnx):
    out, root, stdout = tensorrt_int8
    card = read_card(out)
    assert str(card.precision) == "int8+fp16" and card.quantization["target"] == "tensorrt"
    assert card.parent.kind == "onnx" and card.origin.kind == "checkpoint" and card.step.name == "quantize"
    ids = card.quantization["calibration_ids"]
    assert len(ids) == 128 and all(i.startswith("synthetic/train/") for i in ids)
    (folder,) = (root / "calib").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["ids"] == ids and manifest["method"] == CALIB_METHOD and (folder / "ranges.json").exists()
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["guard"]["images"] == 1000 - 128 and report["sizes"]["int8_bytes"] < report["sizes"]["fp32_bytes"]
    assert report["guard"]["drop"] <= 0.5 and "guard on 872" in stdout  # INT8 may also gain
    again = run_cli("quantize", trained_onnx, "-o", root / "again.onnx", "--calib-dir", root / "calib",
                    "--calib-size", "128", "--no-progress")
    assert "cached ranges reused" in again.stdout
    assert onnx.load(str(root / "again.onnx")).graph == onnx.load(str(out)).graph


def test_cached_ranges_are_checked_and_calibration_is_reproducible(trained_onnx, tmp_path):
    """The manifest records the ranges' sha256: ranges edited in the cache are refused, not used.
    The same images give byte-identical manifests and ranges (no time, tensors in sorted order)."""
    def quantize(calib, out):
        return run_cli("quantize", trained_onnx, "-o", tmp_path / out, "--calib-dir", tmp_path / calib,
                       "--calib-size", "64", "--no-guard", "--no-progress", check=False)

    quantize("a", "a.onnx")
    quantize("b", "b.onnx")
    (fa,), (fb,) = (tmp_path / "a").iterdir(), (tmp_path / "b").iterdir()
    for name in ("manifest.json", "ranges.json"):
        assert (fa / name).read_bytes() == (fb / name).read_bytes(), name
    manifest = json.loads((fa / "manifest.json").read_text())
    assert manifest["ranges_sha256"] == hashlib.sha256((fa / "ranges.json").read_bytes()).hexdigest()
    ranges = json.loads((fa / "ranges.json").read_text())
    assert list(ranges["data"]) == sorted(ranges["data"])
    (fa / "ranges.json").write_text(json.dumps(ranges, indent=1))  # the same ranges, other bytes
    proc = quantize("a", "c.onnx")
    assert proc.returncode == 2 and "changed after it was calibrated" in proc.stderr, proc.stderr
    assert not (tmp_path / "c.onnx").exists()


def test_fp32_rest_and_cpu_target(trained_onnx, tmp_path):
    run_cli("quantize", trained_onnx, "-o", tmp_path / "r32.onnx", "--calib-dir", tmp_path / "c",
            "--calib-size", "64", "--rest", "fp32", "--no-guard", "--no-progress")
    assert {k for k in _qdq_facts(tmp_path / "r32.onnx") if k.startswith("scale")} == {"scale float32"}
    run_cli("quantize", trained_onnx, "-o", tmp_path / "cpu.onnx", "--calib-dir", tmp_path / "c",
            "--calib-size", "64", "--target", "cpu", "--no-guard", "--no-progress")
    f = _qdq_facts(tmp_path / "cpu.onnx")
    assert any(k.startswith("zero uint8") for k in f)                  # U8 activations
    assert any(k.startswith("dq feeds Add") or k.startswith("dq feeds Relu") for k in f)
    _check_cpu_form_weights_and_arithmetic(tmp_path / "cpu.onnx")


def _check_cpu_form_weights_and_arithmetic(path) -> None:
    """Every weight within ±64, so that ONNX Runtime's integer kernels compute what the Q/DQ graph
    says on every x86 CPU: without VNNI they add pairs of u8 x s8 products in 16 bits, which
    2 x 255 x 127 overflows (the README's WRN-16-1 lost 0.65 points that way on an AVX2 EPYC)."""
    import numpy as np
    import onnxruntime as ort

    weights = [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
               if i.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w).max()) for w in weights) == 64
    x = np.random.default_rng(0).random((16, 3, 32, 32), dtype=np.float32)
    runs = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
        opts = ort.SessionOptions()
        opts.graph_optimization_level, opts.log_severity_level = level, 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        runs.append(session.run(None, {session.get_inputs()[0].name: x})[0])
    integer, exact = runs  # QLinearConv kernels; each DequantizeLinear feeding a float Conv
    assert np.abs(integer - exact).max() <= 0.02 * (exact.max() - exact.min())


def test_guard_leaves_the_most_sensitive_layers_in_float(trained_onnx, tmp_path):
    """Entropy calibration clips this model's activations hard (about 3 points of top-1); with a
    0.5-point bound the guard ranks the layers and keeps the worst in float until the drop fits."""
    out = tmp_path / "guarded.onnx"
    proc = run_cli("quantize", trained_onnx, "-o", out, "--calib-dir", tmp_path / "c", "--method", "entropy",
                   "--rest", "fp32", "--no-progress")
    rep = json.loads(out.with_suffix(".report.json").read_text())
    g = rep["guard"]
    assert g["steps"], proc.stdout
    assert g["drop"] <= 0.5 and g["steps"][-1]["drop"] == g["drop"]
    kept = g["steps"][-1]["excluded"]
    assert [r[0] for r in g["ranking"][:len(kept)]] == kept
    assert all(rep["layers"][k] == "float" for k in kept) and "kept float" in proc.stdout
    assert read_card(out).quantization["excluded_layers"] == kept
    convs_q = sum(1 for k, v in rep["layers"].items() if v == "int8" and not k.endswith("+add"))
    adds_q = sum(1 for k, v in rep["layers"].items() if v == "int8" and k.endswith("+add"))
    f = _qdq_facts(out)
    assert f["dq feeds Conv"] + f["dq feeds Gemm"] == 2 * convs_q and f["dq feeds Add"] == adds_q


def test_guard_line_warns_when_agreement_is_below_the_eval_gate():
    """The guard bounds the drop only: a drop within bounds with many flips both ways (one outlying
    calibration image did that to a WRN-50-2, docs/import.md) gets a warning naming eval's gate."""
    from wrn_deploy.limits import INT8_MIN_AGREEMENT
    from wrn_deploy.quant.onnx_to_int8 import _guard_line

    g = {"images": 422, "fp32_top1": 67.30, "int8_top1": 66.82, "drop": 0.47, "drop_ci95": (-2.84, 3.79),
         "max_drop": 0.5, "agreement": 86.73}
    low = _guard_line(g, "percentile").splitlines()
    assert len(low) == 2 and "86.73%" in low[1] and f"{INT8_MIN_AGREEMENT:g}%" in low[1]
    assert "--method image-percentile" in low[1]
    assert "--method percentile" in _guard_line(g, "image-percentile")
    assert "--method image-percentile, which no single image sets --quantizer wrn-deploy" in _guard_line(
        g, "entropy", "modelopt")
    assert len(_guard_line({**g, "agreement": INT8_MIN_AGREEMENT}, "percentile").splitlines()) == 1


@pytest.mark.parametrize("case", ["fp16 model", "not onnx", "tiny calib", "missing"])
def test_bad_input(case, trained_onnx, tmp_path):
    model, extra = trained_onnx, []
    if case == "fp16 model":
        card_ckpt = trained_onnx.parent / "run" / "best.safetensors"
        model = tmp_path / "h.onnx"
        run_cli("export", card_ckpt, "-o", model, "--fp16", "--no-verify")
    elif case == "not onnx":
        model = tmp_path / "x.onnx"
        model.write_bytes(np.random.bytes(300))
    elif case == "tiny calib":
        extra = ["--calib-size", "4"]
    else:
        model = tmp_path / "none.onnx"
    out = tmp_path / "q.onnx"
    proc = run_cli("quantize", model, "-o", out, "--calib-dir", tmp_path / "c", *extra, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
