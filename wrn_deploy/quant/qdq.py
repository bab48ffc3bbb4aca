"""Explicit-quantization ONNX through ONNX Runtime's quantization tools (which run on the CPU).

Three targets:
- ``tensorrt``: what TensorRT's explicit quantization needs: signed INT8, symmetric (zero point 0),
  per-output-channel weight scales (axis 0), per-tensor activation scales, float biases. Where the
  pairs go is the placement (``placement.py``): ``fusion`` (default) quantizes the Conv inputs and
  the residual stream where it enters each residual Add, so TensorRT fuses the Add into the INT8
  convolution, and keeps the classifier float; ``conv`` quantizes the inputs of Conv and Gemm only.
  The rest of the graph is cast to FP16 by default (TensorRT 11 builds strongly typed: FP32 nodes
  would stay FP32).
- ``cpu``: the form ONNX Runtime's CPU kernels run fastest: unsigned asymmetric activations with
  signed weights (U8S8), every supported operator quantized, the weights in 7 bits (see ``_options``).
- ``openvino``: the form OpenVINO's CPU plugin runs fastest: pairs where Intel NNCF places them
  (Conv inputs, both inputs of residual Adds, the pool and the classifier), symmetric, UINT8 after
  a ReLU and INT8 elsewhere (``openvino_form.py``).
"""

from dataclasses import dataclass
from pathlib import Path

from wrn_deploy.errors import UserError
from wrn_deploy.fileio import scratch_dir
from wrn_deploy.limits import CALIB_IMAGE_PERCENTILE, CALIB_METHOD, CALIB_METHODS, CALIB_PERCENTILE, FP16_MAX, FP16_TINY

TARGETS = ("tensorrt", "cpu", "openvino")
QUANTIZERS = ("wrn-deploy", "modelopt")
QUANTIZED_OPS = ("Conv", "Gemm")


@dataclass
class QuantSpec:
    target: str = "tensorrt"
    method: str = CALIB_METHOD  # measured: docs/int8.md
    percentile: float = CALIB_PERCENTILE
    rest: str = "fp16"  # tensorrt target: precision of the unquantized remainder
    placement: str = "fusion"  # tensorrt target: "fusion" (Conv inputs + residual Adds) or "conv"
    quantize_classifier: bool = False  # fusion placement: also quantize the Gemm
    quantizer: str = "wrn-deploy"  # who writes the Q/DQ: "wrn-deploy" (ONNX Runtime's tools) or "modelopt"

    def __post_init__(self):
        if self.target != "tensorrt":  # the cpu and openvino forms leave what is not INT8 in FP32
            self.rest = "fp32"

    def check(self) -> None:
        if self.target not in TARGETS or self.method not in CALIB_METHODS or self.quantizer not in QUANTIZERS:
            raise UserError(f"unknown target/method/quantizer {self.target}/{self.method}/{self.quantizer}")
        from wrn_deploy.quant.placement import PLACEMENTS

        if self.placement not in PLACEMENTS:
            raise UserError(f"unknown placement {self.placement!r}: choose one of {', '.join(PLACEMENTS)}")
        if self.target == "cpu" and (self.placement != "fusion" or self.quantize_classifier):
            raise UserError("--placement and --quantize-classifier apply to --target tensorrt; the cpu target "
                            "quantizes every operator it can")
        if self.target == "openvino" and (self.placement != "fusion" or self.quantize_classifier):
            raise UserError("--placement and --quantize-classifier apply to --target tensorrt; the openvino "
                            "target places its pairs where NNCF does")
        if self.placement == "conv" and self.quantize_classifier:
            raise UserError("--quantize-classifier applies to --placement fusion; --placement conv always "
                            "quantizes the classifier")
        if self.quantizer == "modelopt":
            if self.target != "tensorrt" or self.placement != "fusion" or self.quantize_classifier:
                raise UserError("--quantizer modelopt writes the TensorRT form with ModelOpt's own placement; "
                                "it takes no --target cpu or openvino, --placement conv or --quantize-classifier")
            if self.method in ("percentile", "image-percentile"):
                raise UserError("ModelOpt calibrates with entropy or max only: pass --method entropy or "
                                "--method minmax with --quantizer modelopt")

    @property
    def layout(self) -> str:
        """What decides which tensors need ranges and where pairs go: part of the calibration key."""
        if self.target == "cpu":
            return "all"
        if self.target == "openvino":
            return "nncf"
        return self.placement + ("+classifier" if self.quantize_classifier else "")


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    # The form of the saved ranges, which quantize_static checks against the cache: image-percentile
    # saves min-max ones (``collect.image_percentile_ranges``).
    return {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
            "minmax": CalibrationMethod.MinMax, "image-percentile": CalibrationMethod.MinMax}[name]


def _options(spec: QuantSpec) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType

    extra = {"WeightSymmetric": True, "QuantizeBias": False}
    if spec.method == "percentile":
        extra["CalibPercentile"] = spec.percentile
    if spec.target == "tensorrt":
        extra.update(ActivationSymmetric=True, OpTypesToExcludeOutputQuantization=list(QUANTIZED_OPS))
        kw = dict(activation_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS))
    else:
        extra.update(ActivationSymmetric=False)
        kw = dict(activation_type=QuantType.QUInt8, op_types_to_quantize=None)
    if spec.target == "cpu":
        # Weights within +-64 (ORT's reduce_range; activations keep 8 bits). Without VNNI, ORT's U8S8
        # kernels sum pairs of u8 x s8 products in 16 bits, and 2 x 255 x 127 overflows them: on an
        # AVX2 EPYC the README's WRN-16-1 lost 0.65 points that way, against 0.00 for the same Q/DQ
        # graph computed in float; with +-64 weights the integer kernels match the float arithmetic.
        kw["reduce_range"] = True
    return dict(quant_format=QuantFormat.QDQ, weight_type=QuantType.QInt8, per_channel=True,
                calibrate_method=_method(spec.method), extra_options=extra, **kw)


def calibrate(model_path: Path, chunks, spec: QuantSpec, ranges_path: Path, progress: bool = False) -> None:
    """Run the calibration images through ``model_path`` and save the activation ranges.

    ``chunks(n)`` gives a fresh iterator over the images as float32 N x C x H x W arrays in [0, 1],
    ``n`` at a time; they are read a batch at a time, so memory does not grow with their number
    (``collect.py``). The entropy search uses a 2048-bin histogram, as TensorRT's legacy entropy
    calibrator did: with ``quantize_static``'s defaults (128 bins for 128 quantized bins) the only
    candidate threshold left is the min-max one (measured: identical scales).
    """
    import contextlib
    import io

    import onnx
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    from wrn_deploy.quant import collect

    extra = {"symmetric": spec.target in ("tensorrt", "openvino")}
    if spec.method == "entropy":
        extra.update(num_bins=2048, num_quantized_bins=128)
    elif spec.method in ("percentile", "image-percentile"):
        extra.update(num_bins=2048, percentile=spec.percentile)
    # image-percentile reduces each image's whole tensors itself: the histogram calibrator's augmented
    # model exposes them (the min-max one reduces the whole batch inside the graph).
    calibrator_method = _method("percentile" if spec.method == "image-percentile" else spec.method)
    ops = None
    if spec.target == "tensorrt":
        # The fusion placement also quantizes residual tensors: Add outputs and shortcut Conv outputs.
        ops = list(QUANTIZED_OPS) + (["Add"] if spec.placement == "fusion" else [])
    elif spec.target == "openvino":
        from wrn_deploy.quant.openvino_form import CALIBRATED_OPS

        ops = list(CALIBRATED_OPS)
    with scratch_dir("calibrate") as tmp, contextlib.redirect_stdout(io.StringIO()):
        calibrator = create_calibrator(Path(model_path), ops, augmented_model_path=f"{tmp}/augmented.onnx",
                                       calibrate_method=calibrator_method, extra_options=extra)
        calibrator.infer_session = _calibration_session(calibrator)
        if spec.target == "openvino" and spec.method != "minmax":  # only the tensors the form quantizes: half the work
            from wrn_deploy.quant.openvino_form import quantized_tensors

            needed = quantized_tensors(onnx.load(str(model_path), load_external_data=False))
            calibrator.tensors_to_calibrate = {t for t in calibrator.tensors_to_calibrate if t in needed}
        if spec.method == "minmax":  # reduced to a min and a max per batch inside the graph
            calibrator.collect_data(calibration_reader(chunks(collect.MAX_BATCH), calibrator))
            ranges = calibrator.compute_data()
        elif spec.method == "image-percentile":
            ranges = collect.image_percentile_ranges(calibrator, chunks(_batch(calibrator, chunks)),
                                                     CALIB_IMAGE_PERCENTILE, progress)
        else:
            batch = _batch(calibrator, chunks)
            ranges = collect.histogram_ranges(calibrator, lambda: chunks(batch), progress)
    from onnxruntime.quantization.calibrate import TensorsData

    # Sorted by tensor name: the same images give the same bytes (the manifest records their sha256).
    # A private scratch file: quantize_onnx copies it into the shared calibration folder atomically.
    save_tensors_data(TensorsData(ranges.calibration_method, dict(sorted(ranges.data.items()))), ranges_path)


def _batch(calibrator, chunks) -> int:
    from wrn_deploy.quant import collect

    return collect.batch_size(collect.per_image_bytes(calibrator, next(iter(chunks(1)))))


def _calibration_session(calibrator):
    """The session ONNX Runtime's calibrator makes (no graph optimisation, so every calibrated tensor
    is computed as the graph says), with the project's spin-waiting setting (``limits.ORT_SPIN``):
    its idle threads spin by default: a percentile calibration of WRN-16-4 (512 images) took 18.5 s
    with spinning, 17.5 s without, on the 2-core EPYC (docs/performance.md)."""
    import onnxruntime as ort

    from wrn_deploy.limits import ORT_SPIN

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for pool in ("intra_op", "inter_op"):
        opts.add_session_config_entry(f"session.{pool}.allow_spinning", "1" if ORT_SPIN else "0")
    return ort.InferenceSession(calibrator.augmented_model_path, opts, providers=calibrator.execution_providers)


def quantize(fp32_path: Path, out_path: Path, spec: QuantSpec, ranges_path: Path,
             exclude: list | None = None, only: list | None = None) -> None:
    """Write the Q/DQ model from the ranges that ``calibrate`` saved."""
    import contextlib
    import io
    import logging

    import onnx
    from onnxruntime.quantization import quantize_static

    from wrn_deploy.quant import placement

    logging.getLogger().setLevel(logging.ERROR)  # ORT logs a line per tensor at INFO
    if spec.target == "openvino":
        _quantize_openvino(fp32_path, out_path, ranges_path, exclude, only)
        return
    residual = {}
    kw = dict(nodes_to_exclude=exclude or [], nodes_to_quantize=only)
    if spec.target == "tensorrt" and spec.placement == "fusion":
        plan = placement.plan(onnx.load(str(fp32_path), load_external_data=False), spec.placement,
                              spec.quantize_classifier)
        keep = [n for n in plan.nodes() if n not in (exclude or []) and (only is None or n in only)]
        residual = {a: t for a, t in plan.residual.items() if a in keep}
        kw = dict(nodes_to_quantize=[n for n in keep if n not in residual])
    try:
        if kw["nodes_to_quantize"] == []:  # ORT reads an empty list as "every node"
            Path(out_path).write_bytes(Path(fp32_path).read_bytes())
        else:
            with contextlib.redirect_stdout(io.StringIO()):  # and prints its histogram progress
                quantize_static(str(fp32_path), str(out_path), None, calibration_cache_path=str(ranges_path),
                                **kw, **_options(spec))
    except ValueError as e:
        raise UserError(f"quantization failed: {e}") from None
    if residual:
        _quantize_residuals(out_path, residual, ranges_path)
    if spec.target == "tensorrt" and spec.rest == "fp16":
        _rest_to_fp16(out_path)


def _load_ranges(ranges_path: Path) -> dict:
    import numpy as np
    from onnxruntime.quantization.calibrate import load_tensors_data

    data = load_tensors_data(ranges_path)
    return {name: tuple(float(np.asarray(v).reshape(-1)[0]) for v in td.range_value) for name, td in data.data.items()}


def _quantize_openvino(fp32_path: Path, out_path: Path, ranges_path: Path, exclude, only) -> None:
    import onnx

    from wrn_deploy.quant import openvino_form

    model = openvino_form.quantize(onnx.load(str(fp32_path)), _load_ranges(ranges_path), exclude, only)
    onnx.save(model, str(out_path))


def _quantize_residuals(path: Path, residual: dict, ranges_path: Path) -> None:
    import onnx

    from wrn_deploy.quant.placement import insert_residual_qdq

    model = onnx.load(str(path))
    insert_residual_qdq(model, residual, _load_ranges(ranges_path))
    onnx.save(model, str(path))


def _layer(node) -> str:
    weight = node.input[1] if len(node.input) > 1 else node.name
    return weight.removeprefix("net.").removesuffix(".weight")


def quantizable_nodes(model, spec: QuantSpec | None = None) -> dict:
    """{node name: layer name} of the nodes the guard can leave in float one at a time: the Conv/Gemm
    nodes, named after their weight tensor, and under the fusion placement the residual Adds, named
    after the convolution they fuse into (``blocks.1.convs.1+add``). Narrow convolutions the fusion
    placement leaves float, and the classifier unless asked for, are not listed."""
    if spec is not None and spec.target == "openvino":
        from wrn_deploy.quant import openvino_form

        return openvino_form.labels(model)
    if spec is None or spec.target != "tensorrt" or spec.placement != "fusion":
        return {n.name: _layer(n) for n in model.graph.node if n.op_type in QUANTIZED_OPS}
    from wrn_deploy.quant import placement

    plan = placement.plan(model, spec.placement, spec.quantize_classifier)
    by_name = {n.name: n for n in model.graph.node}
    producer = {o: n for n in model.graph.node for o in n.output}
    graph = placement._Graph(model)
    out = {n: _layer(by_name[n]) for n in plan.convs + plan.gemms}
    for add, fused in plan.fused.items():
        out[add] = f"{_layer(graph.backbone(producer[fused]))}+add"
    return out


def _rest_to_fp16(path: Path) -> None:
    """Cast everything outside the INT8 pairs to FP16; Q/DQ scales become FP16 (opset >= 19)."""
    import onnx
    from onnx import version_converter
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    if model.opset_import[0].version < 19:
        model = version_converter.convert_version(model, 19)
    model = convert_float_to_float16(model, min_positive_val=FP16_TINY, max_finite_val=FP16_MAX,
                                     keep_io_types=True)
    # The converter appends the input's Cast after the nodes that read it and leaves stale types.
    _topological_sort(model.graph)
    del model.graph.value_info[:]
    onnx.save(model, str(path))


def _topological_sort(graph) -> None:
    """Reorder ``graph.node`` in place so each node follows the producers of its inputs."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise UserError("the FP16 conversion produced a graph with an input nothing produces")
        ordered += ready
        for n in ready:
            available.update(n.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    nodes = [type(n)() for n in ordered]
    for new, old in zip(nodes, ordered):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(nodes)


def calibration_reader(batches, calibrator):
    """ONNX Runtime's CalibrationDataReader over an iterator of float32 image batches."""
    from onnxruntime.quantization import CalibrationDataReader

    name = calibrator.infer_session.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def get_next(self):
            x = next(batches, None)
            return None if x is None else {name: x}

    return Reader()
