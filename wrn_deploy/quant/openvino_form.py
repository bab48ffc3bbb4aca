"""The INT8 form OpenVINO's CPU plugin runs fastest: Q/DQ pairs where Intel NNCF puts them, scales
from wrn-deploy's own calibration.

Where NNCF 3.4 (``nncf.quantize``, its default "performance" preset) quantizes these networks, read
from its output on WRN-16-1, WRN-28-10 and a B(1,3,1) network (``tests/quant/test_placement.py``
checks that this module puts pairs on the same inputs):

- every Conv: its input (per tensor) and its weight (per output channel);
- every residual Add (two computed inputs): both inputs, so OpenVINO adds in INT8 and the next
  block's BatchNorm scale and shift, which read the same tensor, read it through the same pair;
- the global average pool's input, and the classifier: its input (the pooled tensor, before the
  Reshape) and its weight; the first convolution too.

Every pair is symmetric (zero point 0): UINT8 for a tensor that cannot be negative (after a ReLU,
or pooled or reshaped from one), INT8 otherwise; weights are INT8 stored as integers behind a
DequantizeLinear, scale per output channel. OpenVINO turns each pair into a FakeQuantize and runs
the operators between them in INT8.

The weights of a layer whose input is signed (INT8: the stem, which reads the normalised image)
stay within ±64, as NNCF's default "overflow fix" keeps the first layer's. A CPU without VNNI
(AVX2, AVX-512 without VNNI) multiplies 8-bit pairs into saturating 16-bit sums, and oneDNN runs a
signed input as unsigned (shifted by 128): two products of 255 and 64 still fit (32,640 <= 32,767),
so with these weights OpenVINO computes what the file says on every CPU. With full ±127 weights it
did not on an AVX2 EPYC (mean |logit difference| from ONNX Runtime's run of the same file 3x the
quantization error; docs/cpu.md).

A quantized tensor is quantized once: every node that reads it reads the one DequantizeLinear,
except a unit the guard keeps float (``exclude``) or did not choose (``only``), which reads the
float tensor.
"""

from dataclasses import dataclass, field

import numpy as np

from wrn_deploy.errors import UserError

POOLS = ("GlobalAveragePool", "ReduceMean")
SHAPE_OPS = ("Reshape", "Flatten", "Squeeze")
NON_NEGATIVE_KEEPERS = POOLS + SHAPE_OPS + ("MaxPool",)   # non-negative in, non-negative out
CALIBRATED_OPS = ("Conv", "Gemm", "Add") + POOLS          # their inputs and outputs get ranges
SIGNED_INPUT_WEIGHT_PEAK = 64   # weight levels of a layer with a signed input (the module's docstring)


@dataclass
class Unit:
    """What one quantizable node (the guard's unit) quantizes."""

    node: str
    activations: list                                # float tensors quantized for it
    weights: list = field(default_factory=list)      # (input index, channel axis)


def plan(model) -> list:
    """The units of the FP32 ``model``, in graph order."""
    nodes = list(model.graph.node)
    consts = {i.name for i in model.graph.initializer} | {n.output[0] for n in nodes if n.op_type == "Constant"}
    producer = {o: n for n in nodes for o in n.output}
    units = []
    for n in nodes:
        if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in consts:
            units.append(Unit(n.name, [n.input[0]], [(1, 0)]))
        elif n.op_type == "Add" and len(n.input) == 2 and all(t not in consts and t in producer for t in n.input):
            units.append(Unit(n.name, list(n.input)))
        elif n.op_type in POOLS:
            units.append(Unit(n.name, [n.input[0]]))
        elif n.op_type == "Gemm" and n.input[1] in consts:
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            units.append(Unit(n.name, [_before_shape_ops(n.input[0], producer)], [(1, 0 if trans_b else 1)]))
    return units


def quantized_tensors(model) -> set:
    """The float tensors the form puts a pair on (those calibration must give ranges for)."""
    return {t for u in plan(model) for t in u.activations}


def _before_shape_ops(tensor: str, producer: dict) -> str:
    """The tensor a Reshape/Flatten chain starts from (NNCF quantizes the pooled tensor, not the
    reshaped one: the same values)."""
    while tensor in producer and producer[tensor].op_type in SHAPE_OPS:
        tensor = producer[tensor].input[0]
    return tensor


def _non_negative(tensor: str, producer: dict) -> bool:
    node = producer.get(tensor)
    while node is not None and node.op_type in NON_NEGATIVE_KEEPERS:
        node = producer.get(node.input[0])
    return node is not None and node.op_type == "Relu"


def quantize(model, ranges: dict, exclude=None, only=None):
    """Insert the pairs into ``model`` (an FP32 ``onnx.ModelProto``, changed in place and returned).

    ``ranges``: {tensor name: (rmin, rmax)} from the calibration; ``exclude``/``only``: unit node
    names to keep float / to quantize alone (the guard)."""
    g = model.graph
    units = plan(model)
    names = {u.node for u in units}
    chosen = [u for u in units if u.node not in set(exclude or []) and (only is None or u.node in only)]
    float_readers = names - {u.node for u in chosen}
    by_name = {n.name: n for n in g.node}
    producer = {o: n for n in g.node for o in n.output}
    weights = {i.name: i for i in g.initializer}
    head, pairs = [], {}            # weight DequantizeLinear nodes; tensor -> its Q/DQ pair
    done_weights = {}
    for u in chosen:
        node = by_name[u.node]
        signed = not _non_negative(u.activations[0], producer)
        for idx, axis in u.weights:
            w = node.input[idx]
            if w not in done_weights:
                done_weights[w] = _weight_dq(g, weights[w], axis, head, SIGNED_INPUT_WEIGHT_PEAK if signed else 127)
            node.input[idx] = done_weights[w]
        for t in u.activations:
            if t not in pairs:
                if t not in ranges:
                    raise UserError(f"the calibration ranges have no entry for {t}; delete the calibration "
                                    "folder to recalibrate")
                pairs[t] = _activation_pair(g, t, ranges[t], unsigned=_non_negative(t, producer))
    _rewire(g, pairs, float_readers)
    _place(g, head, pairs, producer)
    used = {t for n in g.node for t in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return model


def _weight_dq(g, init, axis: int, head: list, peak_level: int = 127) -> str:
    """INT8 weight (symmetric, per channel along ``axis``, within ±``peak_level``) and its
    DequantizeLinear; its output name."""
    from onnx import helper, numpy_helper

    w = numpy_helper.to_array(init).astype(np.float32)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    peak = np.abs(moved).max(axis=1)
    scale = np.where(peak > 0, peak / float(peak_level), 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -peak_level, peak_level).astype(np.int8)
    base = init.name
    g.initializer.extend([numpy_helper.from_array(q, f"{base}_int8"),
                          numpy_helper.from_array(scale, f"{base}_scale"),
                          numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{base}_zero_point")])
    head.append(helper.make_node("DequantizeLinear", [f"{base}_int8", f"{base}_scale", f"{base}_zero_point"],
                                 [f"{base}_dq"], name=f"{base}_DequantizeLinear", axis=axis))
    return f"{base}_dq"


def _activation_pair(g, tensor: str, rng, unsigned: bool) -> tuple:
    """A symmetric per-tensor Q/DQ pair for ``tensor``: UINT8 [0, t] or INT8 [-t, t], t the larger
    magnitude of the calibrated range."""
    from onnx import helper, numpy_helper

    t = float(max(abs(float(rng[0])), abs(float(rng[1]))))
    scale = np.float32(t / (255.0 if unsigned else 127.0) if t > 0 else 1.0)
    zero = np.zeros((), np.uint8 if unsigned else np.int8)
    base = f"{tensor}_ov"
    g.initializer.extend([numpy_helper.from_array(np.asarray(scale).reshape(()), f"{base}_scale"),
                          numpy_helper.from_array(zero, f"{base}_zero_point")])
    q = helper.make_node("QuantizeLinear", [tensor, f"{base}_scale", f"{base}_zero_point"], [f"{base}_q"],
                         name=f"{base}_QuantizeLinear")
    dq = helper.make_node("DequantizeLinear", [f"{base}_q", f"{base}_scale", f"{base}_zero_point"],
                          [f"{base}_dq"], name=f"{base}_DequantizeLinear")
    return q, dq


def _rewire(g, pairs: dict, float_readers: set) -> None:
    for n in g.node:
        if n.name in float_readers:
            continue
        for i, t in enumerate(n.input):
            if t in pairs:
                n.input[i] = pairs[t][1].output[0]


def _place(g, head: list, pairs: dict, producer: dict) -> None:
    """Keep the node list topologically sorted: weight DQs first, each pair right after the node
    that makes its tensor (or first, for a graph input)."""
    after: dict = {}
    for t, pair in pairs.items():
        after.setdefault(producer[t].name if t in producer else None, []).extend(pair)
    nodes = head + after.get(None, [])
    for n in g.node:
        nodes.append(n)
        nodes.extend(after.get(n.name, []))
    del g.node[:]
    g.node.extend(nodes)


def labels(model) -> dict:
    """{unit node name: layer name} for the guard's report: a Conv or Gemm by its weight, a residual
    Add by the convolution whose output it adds to (``blocks.1.convs.1+add``), a pool as ``pool``."""
    from wrn_deploy.quant.placement import _fused_and_residual, _Graph

    graph = _Graph(model)
    by_name = {n.name: n for n in model.graph.node}
    out = {}
    for u in plan(model):
        n = by_name[u.node]
        if n.op_type in ("Conv", "Gemm"):
            out[u.node] = n.input[1].removeprefix("net.").removesuffix(".weight")
        elif n.op_type in POOLS:
            out[u.node] = "pool"
        else:
            pair = _fused_and_residual(graph, n)
            conv = graph.backbone(graph.producer[n.input[pair[0]]]) if pair else None
            out[u.node] = f"{conv.input[1].removeprefix('net.').removesuffix('.weight')}+add" if conv else n.name
    return out
