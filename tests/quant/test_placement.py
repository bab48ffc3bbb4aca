"""Where the TensorRT form puts its Q/DQ pairs: the fusion placement read from real exported graphs,
the CLI's placements and producers, and (where NVIDIA ModelOpt is installed) the placement compared
with ModelOpt's own on WRN-16-1, WRN-28-10 and a bottleneck block type."""

import json
import re
from pathlib import Path

import onnx
import pytest
import torch

from tests.conftest import run_cli
from wrn_deploy.card import read_card
from wrn_deploy.limits import CALIB_IMAGE_PERCENTILE, CALIB_METHOD
from wrn_deploy.quant import placement, qdq


def _export(arch: str, folder: Path) -> Path:
    """A random-weight ``arch`` (BatchNorm statistics randomised) as FP32 ONNX, pre-processed the way
    ``quantize`` pre-processes its input. Placement does not depend on the weights."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from tests.export.conftest import randomize_batchnorm
    from wrn_deploy.arch import create_model
    from wrn_deploy.arch.normalize import Normalized
    from wrn_deploy.export.onnx_export import export_onnx
    from wrn_deploy.export.prepare import prepare_for_export

    torch.manual_seed(0)
    net = Normalized(prepare_for_export(randomize_batchnorm(create_model(arch, 10)))[0], (0.5,) * 3, (0.25,) * 3)
    export_onnx(net.eval(), folder / "fp32.onnx", 32, None, 18)
    quant_pre_process(str(folder / "fp32.onnx"), str(folder / "pre.onnx"), skip_optimization=True,
                      skip_symbolic_shape=True)
    return folder / "pre.onnx"


def _blocks(model) -> list:
    """[(Add node, its main-branch Conv weight, its shortcut: 'identity' or the shortcut Conv weight)]
    read from the exported names, independently of the placement code."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = []
    for n in model.graph.node:
        if n.op_type != "Add" or any(i.startswith("net.") for i in n.input):
            continue
        kinds = [producer[i] for i in n.input]
        main = [k for k in kinds if k.op_type == "Conv" and ".convs." in k.input[1]]
        other = [k for k in kinds if k not in main]
        assert len(main) == 1 and len(other) == 1, [k.name for k in kinds]
        short = other[0].input[1] if other[0].op_type == "Conv" and "shortcut" in other[0].input[1] else "identity"
        out.append((n, main[0], other[0], short))
    return out


@pytest.mark.parametrize("arch", ["wrn-10-1", "wrn-10-1-b131"])
def test_fusion_placement_quantizes_the_residual_input_of_every_block(arch, tmp_path):
    model = onnx.load(str(_export(arch, tmp_path)))
    plan = placement.plan(model, "fusion")
    blocks = _blocks(model)
    assert len(blocks) == 3 and len(plan.residual) == 3
    for add, main, other, short in blocks:
        # The main branch's last Conv output is left float (TensorRT runs the Add in its epilogue);
        # the identity, or the shortcut Conv's output, is what gets quantized.
        assert plan.fused[add.name] == main.output[0]
        assert plan.residual[add.name] == other.output[0]
        assert short == "identity" or short.endswith("shortcut.weight")
    assert {s for *_, s in blocks} != {"identity"}                # a downsampling block is covered
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert plan.convs == convs and plan.gemms == []              # classifier float by default
    assert list(plan.skipped.values()) == ["classifier kept float (--quantize-classifier to quantize it)"]
    assert placement.plan(model, "fusion", quantize_classifier=True).gemms
    conv = placement.plan(model, "conv")
    assert conv.convs == convs and len(conv.gemms) == 1 and not conv.residual


def test_narrow_convolutions_stay_float():
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    def conv(name, cin, cout, inp, k=3):
        w = numpy_helper.from_array(np.zeros((cout, cin, k, k), np.float32), f"{name}.w")
        return helper.make_node("Conv", [inp, w.name], [name], name=name, kernel_shape=[k, k]), w

    nodes, inits = [], []
    for name, cin, cout, inp in [("stem", 3, 16, "x"), ("narrow", 16, 4, "stem"), ("thin", 4, 4, "narrow"),
                                 ("odd", 3, 12, "thin")]:
        n, w = conv(name, cin, cout, inp)
        nodes.append(n)
        inits.append(w)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("odd", TensorProto.FLOAT, None)], inits)
    plan = placement.plan(helper.make_model(g), "fusion")
    # 3->16 and 16->4 are 8-aligned on one side and wide on the other; 4->4 and 3->12 are neither.
    assert plan.convs == ["stem", "narrow"] and set(plan.skipped) == {"thin", "odd"}


def _facts(path) -> dict:
    placed = placement.quantized_inputs(onnx.load(str(path)))
    ops = {n.name: n.op_type for n in onnx.load(str(path)).graph.node}
    out = {}
    for (node, _), src in placed.items():
        key = f"{ops[node]} {'weight' if src == 'weight' else 'activation'}"
        out[key] = out.get(key, 0) + 1
    return out


def test_placements_through_the_cli(trained_onnx, tmp_path):
    """Default: fusion (WRN-10-1: 9 Conv, 3 residual Adds, classifier float); --placement conv gives
    back the Conv/Gemm-inputs-only form; a calibration made for one placement is not reused for the
    other, since the fusion placement needs ranges for the residual tensors too."""
    calib = tmp_path / "calib"
    common = ["--calib-dir", calib, "--calib-size", "64", "--no-guard", "--no-progress"]
    run_cli("quantize", trained_onnx, "-o", tmp_path / "fusion.onnx", *common)
    run_cli("quantize", trained_onnx, "-o", tmp_path / "conv.onnx", "--placement", "conv", *common)
    run_cli("quantize", trained_onnx, "-o", tmp_path / "cls.onnx", "--quantize-classifier", *common)
    fusion, conv, cls = (_facts(tmp_path / f"{p}.onnx") for p in ("fusion", "conv", "cls"))
    # The stem's output is the first block's identity: the BatchNorm scale of that block reads the
    # same DequantizeLinear as the Add (one INT8 copy of the tensor).
    assert fusion == {"Conv activation": 9, "Conv weight": 9, "Add activation": 3, "Mul activation": 1}
    assert conv == {"Conv activation": 9, "Conv weight": 9, "Gemm activation": 1, "Gemm weight": 1}
    assert cls == dict(fusion, **{"Gemm activation": 1, "Gemm weight": 1})
    card = read_card(tmp_path / "fusion.onnx")
    q = card.quantization
    assert q["placement"] == "fusion" and q["quantizer"] == "wrn-deploy" and len(q["quantized_residual_tensors"]) == 3
    assert card.step.options["placement"] == "fusion" and card.step.options["quantizer"] == "wrn-deploy"
    assert read_card(tmp_path / "conv.onnx").quantization["placement"] == "conv"
    tag = f"{CALIB_METHOD}{CALIB_IMAGE_PERCENTILE:g}"  # the default method's, in each folder's name
    folders = sorted(re.fullmatch(rf"wrn-10-1-[0-9a-f]{{10}}-(.+)-{tag}-64-[0-9a-f]{{8}}", p.name).group(1)
                     for p in calib.iterdir())  # between the model's sha and the method
    assert folders == ["tensorrt", "tensorrt-fusion", "tensorrt-fusion-classifier"], folders
    manifest = json.loads(next(calib.glob(f"*-tensorrt-fusion-{tag}-*")).joinpath("manifest.json").read_text())
    assert manifest["layout"] == "fusion" and manifest["quantizer"] == "wrn-deploy"
    ranges = json.loads(next(calib.glob(f"*-tensorrt-fusion-{tag}-*")).joinpath("ranges.json").read_text())["data"]
    assert set(q["quantized_residual_tensors"]) <= set(ranges)
    rep = json.loads((tmp_path / "fusion.report.json").read_text())
    assert sum(1 for k in rep["layers"] if k.endswith("+add")) == 3 and rep["placement"] == "fusion"


def test_committed_calibration_folder_keeps_its_name():
    """Manifests written before placements existed (no layout, no quantizer) name the Conv/Gemm
    placement by wrn-deploy, and still map to the folder they live in."""
    from wrn_deploy.quant import calibset

    root = Path(__file__).resolve().parents[2] / "calibration"
    found = 0
    for manifest_path in root.glob("*/manifest.json"):
        m = json.loads(manifest_path.read_text())
        arch = manifest_path.parent.name.split(f"-{m['model_sha256'][:10]}-")[0]
        assert calibset.calibration_folder(root, arch, m) == manifest_path.parent
        found += 1
    assert found


def test_modelopt_missing_or_misused_fails_in_one_line(trained_onnx, tmp_path, monkeypatch):
    cases = [(["--quantizer", "modelopt", "--method", "percentile"], None, "entropy or max"),
             (["--quantizer", "modelopt", "--placement", "conv"], None, "ModelOpt's own placement"),
             (["--placement", "conv", "--quantize-classifier"], None, "--placement fusion"),
             (["--quantizer", "modelopt"], str(tmp_path / "nope"), "is not a python")]
    import importlib.util

    if importlib.util.find_spec("modelopt") is None:
        cases.append((["--quantizer", "modelopt"], None, "needs nvidia-modelopt"))
    for extra, modelopt_python, fragment in cases:
        if modelopt_python is None:
            monkeypatch.delenv("WRN_DEPLOY_MODELOPT_PYTHON", raising=False)
        else:
            monkeypatch.setenv("WRN_DEPLOY_MODELOPT_PYTHON", modelopt_python)
        out = tmp_path / "q.onnx"
        proc = run_cli("quantize", trained_onnx, "-o", out, "--calib-dir", tmp_path / "c", "--calib-size", "64",
                       *extra, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert fragment in proc.stderr and not out.exists(), proc.stderr


# ---- against NVIDIA ModelOpt (marked; skipped where ModelOpt cannot run) -------------------------

def _modelopt_or_skip():
    from wrn_deploy.errors import UserError
    from wrn_deploy.quant import producers

    try:
        return producers.modelopt_python()
    except UserError as e:
        pytest.skip(str(e.message))


@pytest.mark.modelopt
@pytest.mark.parametrize("arch", ["wrn-16-1", "wrn-10-1-b131", "wrn-28-10"])
def test_same_quantized_tensors_as_modelopt(arch, tmp_path):
    """The set of (node, input) pairs read through a DequantizeLinear, and the float tensor each one
    quantizes, is the same in wrn-deploy's fusion form and in ModelOpt's int8 output on the same
    graph. Random weights: placement does not depend on them."""
    _modelopt_or_skip()
    from wrn_deploy.quant import producers
    from wrn_deploy.quant.collect import tensor_chunks

    pre = _export(arch, tmp_path)
    images = torch.rand(16, 3, 32, 32)
    spec = qdq.QuantSpec("tensorrt", "minmax")
    qdq.calibrate(pre, tensor_chunks(images), spec, tmp_path / "ranges.json")
    qdq.quantize(pre, tmp_path / "ours.onnx", spec, tmp_path / "ranges.json")
    mo = producers.ModelOptProducer(qdq.QuantSpec("tensorrt", "minmax", quantizer="modelopt"), tmp_path)
    mo.calibrate(pre, tensor_chunks(images), tmp_path / "unused.json")
    mo.quantize(pre, tmp_path / "modelopt.onnx", tmp_path / "unused.json")
    ours = placement.quantized_inputs(onnx.load(str(tmp_path / "ours.onnx")))
    theirs = placement.quantized_inputs(onnx.load(str(tmp_path / "modelopt.onnx")))
    assert ours == theirs, (sorted(set(ours.items()) - set(theirs.items())),
                            sorted(set(theirs.items()) - set(ours.items())))
    assert sum(1 for (n, _), s in ours.items() if s != "weight" and "add" in n.lower()) >= 3


@pytest.mark.modelopt
def test_modelopt_producer_through_the_same_gates(trained_onnx, tmp_path):
    _modelopt_or_skip()
    out = tmp_path / "mo.onnx"
    proc = run_cli("quantize", trained_onnx, "-o", out, "--quantizer", "modelopt", "--calib-dir", tmp_path / "c",
                   "--calib-size", "128", "--no-progress")
    assert "by modelopt, entropy calibration" in proc.stdout
    card = read_card(out)
    assert card.quantization["quantizer"] == "modelopt" and card.step.options["quantizer"] == "modelopt"
    assert "nvidia-modelopt" in card.step.versions and len(card.quantization["calibration_ids"]) == 128
    rep = json.loads(out.with_suffix(".report.json").read_text())
    assert abs(rep["guard"]["drop"]) <= 0.5 and rep["guard"]["images"] == 1000 - 128
    (folder,) = (tmp_path / "c").iterdir()
    assert folder.name.split("-")[-3] == "entropy" and "-modelopt-" in folder.name
    assert json.loads((folder / "manifest.json").read_text())["quantizer"] == "modelopt"
    assert not (folder / "ranges.json").exists()                    # ModelOpt keeps its scales itself


# ---- the openvino form against Intel NNCF (skipped where NNCF cannot run) -------------------------

def _pair_types(model) -> dict:
    """{float tensor or weight input: zero-point type (uint8/int8), and the channel axis for a
    per-channel weight} for every Q/DQ pair: symmetric or not, signed or not, per tensor or channel."""
    from onnx import numpy_helper

    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        weight = n.op_type == "DequantizeLinear" and n.input[0] in init
        if n.op_type == "QuantizeLinear" or weight:
            zp = init[n.input[2]]
            axis = next((a.i for a in n.attribute if a.name == "axis"), None)
            assert not zp.any(), f"{n.name}: zero point not 0 (asymmetric)"
            ndim = init[n.input[0]].ndim if weight else None
            out[n.input[0] if not weight else f"weight {n.name}"] = (
                str(zp.dtype), None if not weight else axis % ndim, init[n.input[1]].size > 1)
    return out


@pytest.mark.nncf
@pytest.mark.parametrize("arch", ["wrn-16-1", "wrn-10-1-b131", pytest.param("wrn-28-10", marks=pytest.mark.slow)])
def test_openvino_form_quantizes_what_nncf_quantizes(arch, tmp_path):
    """The openvino target puts its pairs on the same (node, input)s as NNCF's default quantization
    of the same graph, each quantizing the same float tensor, with the same types: UINT8 after a
    ReLU, INT8 elsewhere, zero points 0, weights per output channel. Random weights and two random
    images: NNCF's placement does not depend on them."""
    nncf = pytest.importorskip("nncf", reason="NNCF not installed (pip install nncf)")
    from wrn_deploy.quant.collect import tensor_chunks

    pre = _export(arch, tmp_path)
    model = onnx.load(str(pre))
    name = model.graph.input[0].name
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    theirs = nncf.quantize(model, nncf.Dataset([x[None].numpy() for x in images], lambda x: {name: x}),
                           subset_size=2)
    spec = qdq.QuantSpec("openvino", "minmax")
    qdq.calibrate(pre, tensor_chunks(images), spec, tmp_path / "ranges.json")
    qdq.quantize(pre, tmp_path / "ours.onnx", spec, tmp_path / "ranges.json")
    ours = onnx.load(str(tmp_path / "ours.onnx"))
    a, b = placement.quantized_inputs(ours), placement.quantized_inputs(theirs)
    assert a == b, (sorted(set(a.items()) - set(b.items())), sorted(set(b.items()) - set(a.items())))
    ops = {n.name: n.op_type for n in ours.graph.node}
    kinds = {(ops[n], i) for (n, i), s in a.items() if s != "weight"}
    assert {("Add", 0), ("Add", 1), ("ReduceMean", 0), ("Reshape", 0)} <= kinds      # residuals, pool, classifier
    pa, pb = _pair_types(ours), _pair_types(theirs)
    assert {k: v for k, v in pa.items() if not k.startswith("weight")} == \
        {k: v for k, v in pb.items() if not k.startswith("weight")}
    assert sorted(v for k, v in pa.items() if k.startswith("weight")) == \
        sorted(v for k, v in pb.items() if k.startswith("weight"))
    assert {"uint8", "int8"} == {v[0] for v in pa.values()}


def test_openvino_form_guard_units_and_exclusion(tmp_path):
    """The guard's units: every Conv, residual Add, the pool and the classifier; a unit kept float
    reads float tensors while the other readers of a shared tensor keep their pair."""
    from wrn_deploy.quant import openvino_form
    from wrn_deploy.quant.collect import tensor_chunks

    pre = _export("wrn-10-1", tmp_path)
    model = onnx.load(str(pre))
    labels = qdq.quantizable_nodes(model, qdq.QuantSpec("openvino"))
    assert sum(v.endswith("+add") for v in labels.values()) == 3 and "pool" in labels.values()
    assert list(labels.values())[0] == "stem" and list(labels.values())[-1] == "fc"
    assert sum(n.op_type == "Conv" for n in model.graph.node) == sum(not v.endswith("+add") for v in labels.values()) - 2
    spec = qdq.QuantSpec("openvino", "minmax")
    qdq.calibrate(pre, tensor_chunks(torch.rand(4, 3, 32, 32)), spec, tmp_path / "r.json")
    shortcut = next(n for n, v in labels.items() if v.endswith("shortcut"))
    qdq.quantize(pre, tmp_path / "x.onnx", spec, tmp_path / "r.json", exclude=[shortcut])
    placed = placement.quantized_inputs(onnx.load(str(tmp_path / "x.onnx")))
    assert not any(n == shortcut for n, _ in placed)
    conv_beside = next(n for n in model.graph.node if n.op_type == "Conv" and n.name != shortcut and
                       n.input[0] == next(m for m in model.graph.node if m.name == shortcut).input[0])
    assert (conv_beside.name, 0) in placed                         # the same tensor, still quantized for it
    qdq.quantize(pre, tmp_path / "one.onnx", spec, tmp_path / "r.json", only=[shortcut])
    assert {n for n, _ in placement.quantized_inputs(onnx.load(str(tmp_path / "one.onnx")))} == {shortcut}
    with pytest.raises(Exception, match="no entry"):
        openvino_form.quantize(onnx.load(str(pre)), {}, None, None)


def _openvino_form(tmp_path) -> tuple:
    """A random-weight WRN-10-1 in the openvino form, calibrated on 64 synthetic images; with
    the images and the FP32 file."""
    from wrn_deploy.data import load_dataset
    from wrn_deploy.quant.collect import tensor_chunks

    pre = _export("wrn-10-1", tmp_path)
    images = load_dataset("synthetic", progress=False).test.images[:64] / 255.0
    spec = qdq.QuantSpec("openvino", "minmax")
    qdq.calibrate(pre, tensor_chunks(images.astype("float32")), spec, tmp_path / "r.json")
    qdq.quantize(pre, tmp_path / "q.onnx", spec, tmp_path / "r.json")
    return tmp_path / "q.onnx", images.astype("float32"), pre


def test_openvino_form_keeps_signed_input_weights_within_64_levels(tmp_path):
    """The stem reads the signed (normalised) image: its weights stay within ±64, NNCF's first-layer
    overflow fix; every other weight uses ±127."""
    import numpy as np
    from onnx import numpy_helper

    model = onnx.load(str(_openvino_form(tmp_path)[0]))
    peaks = {i.name.removesuffix("_int8"): int(np.abs(numpy_helper.to_array(i)).max())
             for i in model.graph.initializer if i.name.endswith("_int8")}
    assert peaks.pop("net.stem.weight") == 64
    assert set(peaks.values()) == {127}


def test_openvino_computes_what_the_openvino_form_says(tmp_path):
    """OpenVINO's INT8 run of the file stays next to ONNX Runtime's run of the same Q/DQ graph (the
    file's meaning): within 2% of the logit range. With ±127 stem weights it strayed by about 10% on
    an AVX2 CPU without VNNI."""
    import numpy as np
    ov = pytest.importorskip("openvino", reason="OpenVINO not installed (pip install 'wrn-deploy[openvino]')")
    import onnxruntime as ort

    path, images, pre = _openvino_form(tmp_path)
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    by_openvino = np.array(compiled.create_infer_request().infer({0: images})[compiled.output(0)])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    by_ort = session.run(None, {session.get_inputs()[0].name: images})[0]
    span = float(np.ptp(ort.InferenceSession(str(pre)).run(None, {session.get_inputs()[0].name: images})[0]))
    assert np.abs(by_openvino - by_ort).max() <= 0.02 * span


def test_openvino_calibration_gives_ranges_for_the_quantized_tensors_only(tmp_path):
    """The histogram methods collect only what the form quantizes (about half of every Conv, Add
    and pool tensor): the ranges file names exactly those tensors."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    from wrn_deploy.quant.collect import tensor_chunks
    from wrn_deploy.quant.openvino_form import quantized_tensors

    pre = _export("wrn-10-1", tmp_path)
    spec = qdq.QuantSpec("openvino", "percentile")
    qdq.calibrate(pre, tensor_chunks(torch.rand(8, 3, 32, 32)), spec, tmp_path / "r.json")
    assert set(load_tensors_data(str(tmp_path / "r.json")).data) == quantized_tensors(onnx.load(str(pre)))
