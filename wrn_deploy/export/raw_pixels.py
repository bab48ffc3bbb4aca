"""A raw-pixel front for an ONNX file that already exists: the UINT8 input (0-255, NCHW) that
``export --raw-pixels`` gives a checkpoint, put in front of any float graph wrn-deploy wrote (FP32,
FP16 or either INT8 form), so that Triton's stock clients can send an image's bytes as they are.

The new graph input takes the old input's name; two nodes turn it into what the old graph read:
``Cast`` to the old input's float type, then ``Div`` by 255, the same arithmetic as the exporter's
``x.float() / 255``. Nothing else in the graph changes.
"""

from dataclasses import replace
from pathlib import Path

from wrn_deploy.card import Step, read_card, versions, write_into_onnx
from wrn_deploy.errors import UserError

FLOAT_TYPES = {"float32": 1, "float16": 10}  # onnx.TensorProto.FLOAT, FLOAT16


def check_float_input(card, where) -> None:
    """A one-line refusal unless the artifact takes float images in [0, 1]."""
    spec = card.input
    if spec.dtype == "uint8":
        raise UserError(f"{where} already takes raw pixels (UINT8 0-255)")
    if spec.dtype not in FLOAT_TYPES or tuple(spec.value_range) != (0.0, 1.0) or spec.layout != "NCHW":
        raise UserError(f"{where} takes {spec.dtype} {spec.layout} in {list(spec.value_range)}; a raw-pixel front "
                        "needs float NCHW images in [0, 1]")


def add_raw_pixel_front(source: Path, output: Path, final: Path) -> None:
    """Write ``source`` with a raw-pixel input to ``output``; its card says it is ``final``'s
    (the place the file will have), made from ``source``."""
    import onnx
    from onnx import helper, numpy_helper

    import numpy as np

    card = read_card(source)
    check_float_input(card, source)
    model = onnx.load(str(source))
    (inp,) = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    elem = inp.type.tensor_type.elem_type
    if elem != FLOAT_TYPES[card.input.dtype]:
        raise UserError(f"{source}: its input is ONNX type {elem}, its card says {card.input.dtype}")
    name, inner = inp.name, f"{inp.name}_float"
    for node in model.graph.node:
        for k, i in enumerate(node.input):
            if i == name:
                node.input[k] = inner
    scale = numpy_helper.from_array(np.array(255, dtype=np.float16 if elem == 10 else np.float32), f"{inner}_scale")
    model.graph.initializer.append(scale)
    front = [helper.make_node("Cast", [name], [f"{name}_cast"], to=elem, name="raw_pixels_cast"),
             helper.make_node("Div", [f"{name}_cast", scale.name], [inner], name="raw_pixels_scale")]
    nodes = front + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    inp.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    onnx.checker.check_model(model)
    onnx.save(model, str(output))
    spec = replace(card.input, dtype="uint8", value_range=(0, 255))
    step = Step("raw-pixels", {}, versions("onnx"))
    write_into_onnx(output, card.derive("onnx", source, final, step, input=spec))
