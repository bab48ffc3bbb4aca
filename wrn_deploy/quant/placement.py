"""Where the Q/DQ pairs go in the TensorRT form, read from the FP32 graph (ONNX only, no runtime).

Two placements for the ``tensorrt`` target:

- ``conv``: Q/DQ on the inputs of every Conv and Gemm (activation per tensor, weight per output
  channel), nothing else. TensorRT fuses each pair into an INT8 convolution whose output is float.
- ``fusion`` (default): the Conv inputs as above, plus the residual stream where it enters each
  residual ``Add``: the identity tensor, or the shortcut convolution's output in a block that
  changes shape. The other input of that Add, the output of the block's last convolution, stays
  unquantized so TensorRT can run the Add in that convolution's epilogue, which then reads the
  residual in INT8. The classifier's Gemm stays float unless asked for. On the 10-class WRNs this
  is the placement NVIDIA ModelOpt's ONNX PTQ chooses (``docs/int8.md`` lists the comparison;
  ModelOpt quantizes a classifier with 16 or more outputs).

A residual tensor that is quantized is quantized once: every node that reads it (the next block's
BatchNorm scale as well as the Add) reads the same DequantizeLinear output, so the tensor exists in
INT8 only and every reader sees the same scale.
"""

from dataclasses import dataclass, field

PLACEMENTS = ("fusion", "conv")


@dataclass
class Placement:
    convs: list                                    # Conv node names whose inputs get Q/DQ
    gemms: list                                    # Gemm node names whose inputs get Q/DQ
    residual: dict = field(default_factory=dict)   # residual Add node name -> tensor to quantize
    fused: dict = field(default_factory=dict)      # residual Add node name -> input left float
    skipped: dict = field(default_factory=dict)    # node name -> why it stays float

    def nodes(self) -> list:
        """The node names the guard can leave in float one at a time, in graph order."""
        return self.convs + self.gemms + list(self.residual)


class _Graph:
    def __init__(self, model):
        g = model.graph
        self.nodes = list(g.node)
        self.consts = {i.name: i for i in g.initializer}
        for n in self.nodes:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = n
        self.inputs = {i.name for i in g.input}
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict = {}
        for n in self.nodes:
            for t in n.input:
                self.consumers.setdefault(t, []).append(n)

    def variable_inputs(self, node) -> list:
        return [t for t in node.input if t and t not in self.consts]

    def parents(self, node) -> list:
        return [self.producer[t] for t in self.variable_inputs(node) if t in self.producer]

    def backbone(self, node):
        """The Conv that TensorRT would fuse ``node`` into as an epilogue: ``node`` itself if it is a
        Conv, or a Conv reached through Add/Mul nodes with one constant input (a bias or a folded
        scale). None when there is none."""
        while node is not None:
            if node.op_type == "Conv":
                return node
            if node.op_type in ("Add", "Mul") and len(self.variable_inputs(node)) == 1:
                node = self.producer.get(self.variable_inputs(node)[0])
                continue
            return None
        return None

    def distances(self, node) -> dict:
        """{ancestor node name: shortest number of edges from ``node`` back to it} (node itself 0)."""
        out, frontier = {node.name: 0}, [node]
        while frontier:
            nxt = []
            for n in frontier:
                for p in self.parents(n):
                    if p.name not in out:
                        out[p.name] = out[n.name] + 1
                        nxt.append(p)
            frontier = nxt
        return out


def _fused_and_residual(g: _Graph, add) -> tuple | None:
    """(index of the input TensorRT fuses as the Conv epilogue, index of the residual input), or
    None when ``add`` is not a residual Add."""
    if len(add.input) != 2 or len(g.variable_inputs(add)) != 2 or any(t not in g.producer for t in add.input):
        return None
    a, b = (g.producer[t] for t in add.input)
    bb = [g.backbone(a), g.backbone(b)]
    da, db = g.distances(a), g.distances(b)
    common = set(da) & set(db)
    lca = min(common, key=lambda k: (da[k] + db[k], k)) if common else None
    if bb[0] is not None and bb[1] is not None:
        if bb[0] is bb[1]:
            return None
        # Both inputs end in a convolution (a block whose shortcut is a 1x1 Conv): the main branch
        # is the one with the longer path back to where the two branches split.
        if lca is None:
            return None
        return (0, 1) if da[lca] > db[lca] else (1, 0)
    for i in (0, 1):
        if bb[i] is not None and bb[1 - i] is None:
            # A Conv whose own output reaches the other input too is not a skip connection.
            return None if lca == bb[i].name else (i, 1 - i)
    return None


def _int8_conv_supported(g: _Graph, conv) -> str | None:
    """Why TensorRT's INT8 convolutions would not pay off for ``conv`` (None when they would): the
    rule NVIDIA's ONNX quantizer applies, fewer than 16 input or output channels unless the
    convolution is ungrouped, square, a multiple of 8 wide on one side and not narrow on both."""
    w = g.consts.get(conv.input[1]) if len(conv.input) > 1 else None
    if w is None or not hasattr(w, "dims"):
        return "weight is not a constant"
    out_ch, in_ch = w.dims[0], w.dims[1]
    if out_ch >= 16 and in_ch >= 16:
        return None
    attrs = {a.name: a for a in conv.attribute}
    group = attrs["group"].i if "group" in attrs else 1
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else list(w.dims[2:])
    reads_input = any(t in g.inputs for t in conv.input)
    if (group == 1 and (out_ch % 8 == 0 or in_ch % 8 == 0) and (reads_input or out_ch >= 16 or in_ch >= 16)
            and len(set(kernel)) == 1):
        return None
    if group > 1 and out_ch % 8 == 0 and all(k >= 3 for k in kernel):
        return None
    return f"{in_ch} input / {out_ch} output channels: too narrow for INT8 kernels"


def plan(model, placement: str, quantize_classifier: bool = False) -> Placement:
    """Which nodes of the FP32 ``model`` get Q/DQ under ``placement`` (see the module docstring)."""
    g = _Graph(model)
    if placement == "conv":
        return Placement([n.name for n in g.nodes if n.op_type == "Conv"],
                         [n.name for n in g.nodes if n.op_type == "Gemm"])
    out = Placement([], [])
    for n in g.nodes:
        if n.op_type == "Conv":
            why = _int8_conv_supported(g, n)
            if why:
                out.skipped[n.name] = why
            else:
                out.convs.append(n.name)
        elif n.op_type == "Gemm":
            if quantize_classifier:
                out.gemms.append(n.name)
            else:
                out.skipped[n.name] = "classifier kept float (--quantize-classifier to quantize it)"
        elif n.op_type == "Add":
            pair = _fused_and_residual(g, n)
            if pair:
                out.fused[n.name] = n.input[pair[0]]
                out.residual[n.name] = n.input[pair[1]]
    return out


def insert_residual_qdq(model, tensors: dict, ranges: dict) -> None:
    """Quantize each residual tensor once, in place: one QuantizeLinear/DequantizeLinear pair (signed
    INT8, symmetric, per tensor) whose output replaces the tensor for every node that reads it.

    ``tensors``: {Add node name: tensor name}; ``ranges``: {tensor name: (rmin, rmax)}. The scale
    is computed by ONNX Runtime's own function, as for the Conv inputs. A tensor that already goes
    through a DequantizeLinear (it also feeds a quantized Conv) keeps that pair.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

    from wrn_deploy.errors import UserError

    g = model.graph
    qmin, qmax = get_qmin_qmax_for_qType(TensorProto.INT8, symmetric=True)
    for add_name, tensor in tensors.items():
        readers = [n for n in g.node if tensor in n.input and n.op_type != "QuantizeLinear"]
        add = next((n for n in readers if n.name == add_name), None)
        if add is None:     # the Add is already reading a DequantizeLinear output, or was removed
            continue
        if tensor not in ranges:
            raise UserError(f"the calibration ranges have no entry for the residual tensor {tensor}; "
                            "delete the calibration folder to recalibrate")
        rmin, rmax = ranges[tensor]
        zero, scale = compute_scale_zp(np.float32(rmin), np.float32(rmax), qmin, qmax, symmetric=True)
        base = f"{tensor}_residual"
        g.initializer.extend([numpy_helper.from_array(np.asarray(scale, np.float32).reshape(()), f"{base}_scale"),
                              numpy_helper.from_array(np.asarray(zero, np.int8).reshape(()), f"{base}_zero_point")])
        q = helper.make_node("QuantizeLinear", [tensor, f"{base}_scale", f"{base}_zero_point"], [f"{base}_q"],
                             name=f"{base}_QuantizeLinear")
        dq = helper.make_node("DequantizeLinear", [f"{base}_q", f"{base}_scale", f"{base}_zero_point"],
                              [f"{base}_dq"], name=f"{base}_DequantizeLinear")
        for n in readers:
            for i, t in enumerate(n.input):
                if t == tensor:
                    n.input[i] = dq.output[0]
        # Keep the node list topologically sorted: the pair goes right after the tensor's producer.
        nodes = list(g.node)
        at = next((k + 1 for k, n in enumerate(nodes) if tensor in n.output), 0)
        nodes[at:at] = [q, dq]
        del g.node[:]
        g.node.extend(nodes)


def quantized_inputs(model) -> dict:
    """{(node name, input index): what reaches it}, for every input of a non-Q/DQ node that is read
    through a DequantizeLinear (Casts between are looked through): ``"weight"`` for a constant, else
    the name of the float tensor that was quantized. Producer-neutral: it reads wrn-deploy's and
    ModelOpt's output alike, so placements can be compared."""
    g = model.graph
    consts = {i.name for i in g.initializer} | {n.output[0] for n in g.node if n.op_type == "Constant"}
    producer = {o: n for n in g.node for o in n.output}

    def through_casts(t):
        while t in producer and producer[t].op_type == "Cast":
            t = producer[t].input[0]
        return t

    out = {}
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear", "Cast"):
            continue
        for i, t in enumerate(n.input):
            src = through_casts(t)
            dq = producer.get(src)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            x = through_casts(dq.input[0])
            if x in producer and producer[x].op_type == "QuantizeLinear":  # float -> Q -> DQ
                x = through_casts(producer[x].input[0])
            # A weight is stored either as INT8 (DQ only) or as float quantized in the graph (Q, DQ).
            out[(n.name, i)] = "weight" if x in consts else x
    return out
