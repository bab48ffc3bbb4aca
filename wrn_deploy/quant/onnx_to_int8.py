"""FP32 ONNX -> INT8 Q/DQ ONNX: choose calibration images, calibrate (or reuse cached ranges),
quantize, guard the accuracy, record everything; the output is written only when all succeed."""

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.card import FP32, Card, read_card
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import atomic_output, check_output, named_from, scratch_dir, sha256_file, write_json
from wrn_deploy.limits import CALIB_MIN_IMAGES, CALIB_SIZE, INT8_MAX_DROP, INT8_MIN_AGREEMENT, guard_min_images
from wrn_deploy.quant.qdq import QuantSpec


@dataclass
class QuantOptions:
    spec: QuantSpec = field(default_factory=QuantSpec)
    data: str | None = None          # dataset to calibrate on [default: the card's]
    data_dir: str | None = None
    calib_size: int = CALIB_SIZE
    seed: int = 0
    split: str = "val"
    calib_dir: str = "calibration"
    max_drop: float | None = INT8_MAX_DROP
    allow_other_data: bool = False
    skip_bad_images: bool = False
    progress: bool = True


def _check_classifier(path: Path) -> Card:
    import onnx

    card = read_card(path)
    if card.kind != "onnx" or card.precision != FP32:
        raise UserError(f"{path} is a {card.precision} {card.kind}; quantize the FP32 ONNX export")
    if card.input.dtype == "uint8":
        raise UserError(f"{path} takes raw pixels (UINT8); quantize the float export (without --raw-pixels)")
    graph = onnx.load(str(path), load_external_data=False).graph
    inp, out = graph.input[0].type.tensor_type, graph.output[0].type.tensor_type
    if (len(graph.input) != 1 or inp.elem_type != onnx.TensorProto.FLOAT or len(inp.shape.dim) != 4
            or out.shape.dim[-1].dim_value != card.num_classes):
        raise UserError(f"{path} is not a float32 image classifier with {card.num_classes} outputs")
    if inp.shape.dim[0].HasField("dim_value"):  # calibration and the guard send batches of their own size
        raise UserError(f"{path} takes batches of exactly {inp.shape.dim[0].dim_value} (export --static-batch); "
                        "quantize an export with a dynamic batch (export without --static-batch)")
    return card


def quantize_onnx(onnx_path, output, opts: QuantOptions, force: bool = False) -> dict:
    from wrn_deploy.quant import calibset, decoded

    onnx_path, output = Path(onnx_path), Path(output)
    opts.spec.check()
    for out in (output, output.with_suffix(".report.json")):
        check_output(out, (onnx_path,), force)
    card = _check_classifier(onnx_path)
    data = calibset.choose(card, opts.data, opts.data_dir, opts.calib_size, opts.seed, opts.split,
                           opts.allow_other_data, opts.skip_bad_images)
    need = guard_min_images(opts.max_drop) if opts.max_drop is not None else 0
    if len(data.guard) < need:
        # a smaller calibration set frees images for the guard, down to calibration's own minimum
        fewer = "lower --calib-size, " if len(data.guard) + opts.calib_size - CALIB_MIN_IMAGES >= need else ""
        raise UserError(f"the accuracy guard would score only {len(data.guard)} held-out images, where one image is "
                        f"{100 / max(len(data.guard), 1):.2f} points; a {opts.max_drop:g}-point bound needs at least "
                        f"{need}: {fewer}hold out more when training (--val-size), raise --max-int8-drop, or pass "
                        "--no-guard")
    decoded.share(data.calib)  # small images: the manifest's pixel digests read the kept decode
    manifest = calibset.make_manifest(data, sha256_file(onnx_path), opts.spec.target, opts.spec.method,
                                      opts.spec.percentile, opts.seed, layout=opts.spec.layout,
                                      quantizer=opts.spec.quantizer)
    folder = calibset.calibration_folder(Path(opts.calib_dir), card.arch, manifest)
    with scratch_dir("quantize") as tmp:
        from wrn_deploy.quant import producers

        cached = calibset.check_cached(folder, manifest, copy_to=Path(tmp) / "ranges.json")
        producer = producers.for_spec(opts.spec, Path(tmp))  # fails here when ModelOpt is missing
        made = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        job = _Job(onnx_path, output, card, opts, manifest, folder, cached, producer, Path(tmp))
        try:
            result = _quantize_and_guard(job, data)
        except BaseException:
            if made:  # a failed first run leaves no empty folder behind (another run's files stay)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        if not cached:
            if job.ranges.is_file():  # cached for the next run, with what check_cached verifies then
                with atomic_output(folder / "ranges.json") as dst:
                    shutil.copyfile(job.ranges, dst)
                manifest = {**manifest, "ranges_sha256": sha256_file(job.ranges)}
            write_json(folder / "manifest.json", manifest)
        report = _finish(job, result, force)
    write_json(output.with_suffix(".report.json"), _portable(report, output), replace=force)
    return report


def _portable(report: dict, output: Path) -> dict:
    """The report as written beside the model: its paths relative to the model's folder, as typed
    on the command line they would name a folder of this machine."""
    return {**report, "output": output.name, "source": named_from(report["source"], output),
            "calibration": {**report["calibration"], "folder": named_from(report["calibration"]["folder"], output)}}


@dataclass(frozen=True)
class _Job:
    """One quantization: what goes in, where the ranges live, who writes the Q/DQ graph."""

    fp32: Path
    output: Path
    card: Card
    opts: QuantOptions
    manifest: dict
    folder: Path            # the calibration folder (manifest.json, ranges.json)
    cached: bool            # its ranges are reused
    producer: object
    tmp: Path

    @property
    def ranges(self) -> Path:
        """The ranges quantization reads: a private copy (checked, or just calibrated), never the
        shared folder's file, which another run could change in between."""
        return self.tmp / "ranges.json"


@dataclass(frozen=True)
class _Result:
    path: Path              # the INT8 model in the scratch folder
    guard: object           # guard.GuardResult
    nodes: dict             # quantizable node -> label
    placed: dict            # (node, input) -> what the pair quantizes
    calib_s: float
    versions: dict


def _quantize_and_guard(job: _Job, data) -> _Result:
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from wrn_deploy.quant import decoded, guard
    from wrn_deploy.quant.placement import quantized_inputs

    pre, int8 = job.tmp / "pre.onnx", job.tmp / "int8.onnx"
    quant_pre_process(str(job.fp32), str(pre), skip_optimization=True, skip_symbolic_shape=True)
    t0 = time.perf_counter()
    if not job.cached:
        job.producer.calibrate(pre, decoded.calibration_chunks(data.calib), job.ranges, job.opts.progress)
    calib_s = time.perf_counter() - t0
    job.producer.quantize(pre, int8, job.ranges)
    if not job.producer.uses_cached_ranges:  # ModelOpt calibrates inside its quantize
        calib_s = time.perf_counter() - t0

    def requantize(exclude=None, only=None) -> Path:
        path = job.tmp / ("single.onnx" if only else "int8.onnx")
        job.producer.quantize(pre, path, job.ranges, exclude=exclude, only=only)
        return path

    nodes = job.producer.nodes(onnx.load(str(pre), load_external_data=False))
    res = None  # --no-guard: no guard inference at all
    if job.opts.max_drop is not None:
        held = guard.held_out(job.fp32, data.guard, job.manifest["model_sha256"])
        res = guard.check(held, int8, job.opts.max_drop, requantize, list(nodes), job.opts.progress,
                          runtime=guard.runtime_for(job.opts.spec.target))
    placed = quantized_inputs(onnx.load(str(int8), load_external_data=False))
    versions = job.producer.versions()
    if res is not None and guard.runtime_for(job.opts.spec.target) == "openvino":
        from wrn_deploy.card import versions as installed

        versions = {**versions, **installed("openvino")}
    return _Result(int8, res, nodes, placed, calib_s, versions)


def _quantization_card(job: _Job, result: _Result) -> dict:
    """The card's ``quantization`` field: target, method, placement, calibration and what stayed float."""
    label, placed, m = result.nodes, result.placed, job.manifest
    residual = sorted({src for (node, _), src in placed.items() if src != "weight"
                       and any(node == a for a in label if label[a].endswith("+add"))})
    spec = job.opts.spec
    return {"target": spec.target, "method": spec.method, "rest": spec.rest, "quantizer": spec.quantizer,
            "placement": spec.layout, "quantized_residual_tensors": residual, "quantized_inputs": len(placed),
            "percentile": m["percentile"], "calibration_folder": job.folder.name,  # no machine path
            "calibration_ids_sha256": m["ids_sha256"], "calibration_ids": m["ids"],
            "calibration_image_sha256": m["image_sha256"], "calibration_dataset": m["dataset"],
            "excluded_layers": [label[n] for n in _excluded(result)]}


def _excluded(result: _Result) -> tuple:
    return result.guard.excluded if result.guard else ()


def guard_runtime(job: _Job) -> str:
    from wrn_deploy.quant.guard import runtime_for

    return runtime_for(job.opts.spec.target)


def _guard_report(job: _Job, result: _Result) -> dict | None:
    """The guard's figures, or None under --no-guard (nothing was scored)."""
    res, label, max_drop = result.guard, result.nodes, job.opts.max_drop
    if res is None:
        return None
    return {"images": res.stats.images, "fp32_top1": res.fp32_top1, "int8_top1": res.int8_top1,
            "drop": res.drop, "drop_ci95": list(res.drop_ci95), "agreement": res.agreement,
            "max_drop": max_drop, "min_images": guard_min_images(max_drop) if max_drop else None,
            "steps": [{"excluded": [label[n] for n in s.excluded], "int8_top1": s.int8_top1, "drop": s.drop}
                      for s in res.steps],
            "ranking": [(label[n], err) for n, err in res.ranking[:10]]}


def _finish(job: _Job, result: _Result, force: bool) -> dict:
    from dataclasses import asdict

    from wrn_deploy.card import Precision, Step, versions, write_into_onnx
    from wrn_deploy.onnx_check import check_model

    opts, label = job.opts, result.nodes
    # The cpu target quantizes every operator it can; what remains runs in FP32.
    rest = opts.spec.rest if opts.spec.target == "tensorrt" else "fp32"
    step = Step("quantize", {**asdict(opts.spec), "calib_size": opts.calib_size, "seed": opts.seed,
                             "split": opts.split, "max_drop": opts.max_drop},
                {**versions("onnx", "onnxruntime"), **result.versions})
    new_card = job.card.derive("onnx", job.fp32, job.output, step, precision=Precision("int8", rest),
                               quantization=_quantization_card(job, result))
    with atomic_output(job.output, replace=force) as tmp:
        tmp.write_bytes(result.path.read_bytes())
        write_into_onnx(tmp, new_card)
        check_model(tmp)
        size = tmp.stat().st_size
    excluded = set(_excluded(result))
    m = job.manifest
    return {"output": str(job.output), "source": str(job.fp32), "precision": str(new_card.precision),
            "target": opts.spec.target, "quantizer": opts.spec.quantizer, "placement": opts.spec.layout,
            "quantized_inputs": {f"{n}:{i}": src for (n, i), src in sorted(result.placed.items())},
            "method": opts.spec.method, "rest": opts.spec.rest,
            "calibration": {"folder": str(job.folder), "images": m["size"], "split": m["split"],
                            "reused_cached_ranges": job.cached, "seconds": round(result.calib_s, 2)},
            "guard": _guard_report(job, result),
            "guard_runtime": guard_runtime(job) if job.opts.max_drop is not None else None,
            "layers": {label[n]: ("float" if n in excluded else "int8") for n in label},
            "sizes": {"fp32_bytes": job.fp32.stat().st_size, "int8_bytes": size}}


def format_report(rep: dict) -> str:
    g, c = rep["guard"], rep["calibration"]
    n8 = sum(1 for v in rep["layers"].values() if v == "int8")
    how = {"tensorrt": f"{rep['placement']} placement by {rep['quantizer']}", "cpu": "every op",
           "openvino": "NNCF's placement"}[rep["target"]]
    lines = [f"wrote {rep['output']} (INT8 Q/DQ for {rep['target']}, {how}, {rep['method']} calibration, "
             f"rest {rep['rest'] if rep['target'] == 'tensorrt' else 'int8/fp32'})",
             f"  calibration: {c['images']} images from {c['split']}, "
             + ("cached ranges reused" if c["reused_cached_ranges"] else f"{c['seconds']:.1f} s") + f" -> {c['folder']}",
             _guard_line(g, rep["method"], rep["quantizer"]),
             f"  layers: {n8} of {len(rep['layers'])} in INT8 (Conv/Gemm"
             + (", residual Add" if any(k.endswith("+add") for k in rep["layers"]) else "")
             + (", pool" if "pool" in rep["layers"] else "") + ")"]
    for s in (g or {}).get("steps", []):
        lines.append(f"    kept float: {s['excluded'][-1]:<28} -> INT8 top-1 {s['int8_top1']:.2f}% (drop {s['drop']:+.2f})")
    lines.append(f"  size: {rep['sizes']['fp32_bytes'] / 1e6:.2f} MB FP32 -> {rep['sizes']['int8_bytes'] / 1e6:.2f} MB INT8")
    return "\n".join(lines)


def _guard_line(g: dict | None, method: str, quantizer: str = "wrn-deploy") -> str:
    if g is None:
        return "  guard: off (--no-guard): INT8 accuracy was not checked"
    line = (f"  guard on {g['images']} held-out training images: FP32 {g['fp32_top1']:.2f}%  INT8 {g['int8_top1']:.2f}%  "
            f"drop {g['drop']:+.2f} pts (95% CI {g['drop_ci95'][0]:+.2f}, {g['drop_ci95'][1]:+.2f}; max {g['max_drop']})  "
            f"agreement {g['agreement']:.2f}%")
    if g["agreement"] < INT8_MIN_AGREEMENT:
        # The guard bounds the drop only; eval's gate also asks for agreement. A drop within bounds with
        # many flips both ways is how one outlying calibration image (a range stretched 40x) showed up.
        other = "image-percentile, which no single image sets" if method != "image-percentile" else "percentile"
        if quantizer == "modelopt":  # which has neither percentile method
            other = f"{other} --quantizer wrn-deploy"
        line += (f"\n  warning: INT8 agrees with FP32 on only {g['agreement']:.2f}% of these images (eval's INT8 gate "
                 f"asks {INT8_MIN_AGREEMENT:g}%); a calibration image with outlying activations can stretch a range: "
                 f"compare --method {other} (docs/int8.md)")
    return line
