"""FP32 ONNX -> INT8 Q/DQ ONNX: choose calibration images, calibrate (or reuse cached ranges),
quantize, guard the accuracy, record everything; the output is written only when all succeed."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.card import FP32, Card, read_card
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import atomic_output, check_output, scratch_dir, sha256_file, write_json
from wrn_deploy.limits import CALIB_SIZE, INT8_MAX_DROP, guard_min_images
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
    graph = onnx.load(str(path), load_external_data=False).graph
    inp, out = graph.input[0].type.tensor_type, graph.output[0].type.tensor_type
    if (len(graph.input) != 1 or inp.elem_type != onnx.TensorProto.FLOAT or len(inp.shape.dim) != 4
            or out.shape.dim[-1].dim_value != card.num_classes):
        raise UserError(f"{path} is not a float32 image classifier with {card.num_classes} outputs")
    return card


def quantize_onnx(onnx_path, output, opts: QuantOptions, force: bool = False) -> dict:
    from wrn_deploy.quant import calibset

    onnx_path, output = Path(onnx_path), Path(output)
    opts.spec.check()
    for out in (output, output.with_suffix(".report.json")):
        check_output(out, (onnx_path,), force)
    card = _check_classifier(onnx_path)
    data = calibset.choose(card, opts.data, opts.data_dir, opts.calib_size, opts.seed, opts.split,
                           opts.allow_other_data, opts.skip_bad_images)
    need = guard_min_images(opts.max_drop) if opts.max_drop is not None else 0
    if len(data.guard) < need:
        raise UserError(f"the accuracy guard would score only {len(data.guard)} held-out images, where one image is "
                        f"{100 / max(len(data.guard), 1):.2f} points; a {opts.max_drop:g}-point bound needs at least "
                        f"{need}: lower --calib-size, hold out more when training (--val-size), or pass --no-guard")
    manifest = calibset.make_manifest(data, sha256_file(onnx_path), opts.spec.target, opts.spec.method,
                                      opts.spec.percentile, opts.seed, layout=opts.spec.layout,
                                      quantizer=opts.spec.quantizer)
    folder = calibset.calibration_folder(Path(opts.calib_dir), card.arch, manifest)
    cached = calibset.check_cached(folder, manifest)
    with scratch_dir("quantize") as tmp:
        from wrn_deploy.quant import producers

        producer = producers.for_spec(opts.spec, Path(tmp))  # fails here when ModelOpt is missing
        folder.mkdir(parents=True, exist_ok=True)
        result = _quantize_and_guard(onnx_path, Path(tmp), opts, data, folder / "ranges.json", cached, producer)
        if not cached:
            write_json(folder / "manifest.json", manifest)
        report = _finish(onnx_path, output, card, manifest, folder, opts, result, cached, force)
    write_json(output.with_suffix(".report.json"), report, replace=force)
    return report


def _quantize_and_guard(fp32: Path, tmp: Path, opts, data, ranges: Path, cached: bool, producer) -> dict:
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from wrn_deploy.quant import guard

    pre = tmp / "pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_optimization=True, skip_symbolic_shape=True)
    name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
    t0 = time.perf_counter()
    if not cached:
        producer.calibrate(pre, data.calib.images(), name, ranges)
    calib_s = time.perf_counter() - t0
    int8 = tmp / "int8.onnx"
    producer.quantize(pre, int8, ranges)
    if not producer.uses_cached_ranges:  # ModelOpt calibrates inside its quantize
        calib_s = time.perf_counter() - t0
    from wrn_deploy.quant.placement import quantized_inputs

    placed = quantized_inputs(onnx.load(str(int8), load_external_data=False))
    images, labels = data.guard.images(), data.guard.labels
    ref = guard.logits(fp32, images)
    got = guard.logits(int8, images)
    res = guard.GuardResult(guard.top1(ref, labels), guard.top1(got, labels), guard.top1(got, ref.argmax(1)))
    nodes = producer.nodes(onnx.load(str(pre), load_external_data=False))
    excluded = []
    if opts.max_drop is not None and res.drop > opts.max_drop:
        excluded = _exclude_until_within(pre, tmp, opts, res, ref, images, labels, ranges, list(nodes), producer)
        got = guard.logits(int8, images)
        placed = quantized_inputs(onnx.load(str(int8), load_external_data=False))
    res.drop_ci95 = guard.drop_interval(ref, got, labels)
    return {"path": int8, "guard": res, "excluded": excluded, "nodes": nodes, "calib_s": calib_s,
            "guard_images": len(labels), "placed": placed, "versions": producer.versions()}


def _exclude_until_within(pre, tmp, opts, res, ref, images, labels, ranges, nodes, producer) -> list:
    from tqdm import tqdm

    from wrn_deploy.quant import guard

    def only(node):
        path = tmp / "single.onnx"
        producer.quantize(pre, path, ranges, only=[node])
        return path

    sample = images[:64]
    with tqdm(total=len(nodes), desc="ranking layers", disable=not opts.progress, leave=False) as bar:
        res.ranking = guard.rank_layers(ref[:64], sample, only, nodes, bar)
    excluded = []
    for node, _ in res.ranking:
        excluded.append(node)
        producer.quantize(pre, tmp / "int8.onnx", ranges, exclude=excluded)
        acc = guard.top1(guard.logits(tmp / "int8.onnx", images), labels)
        res.steps.append({"excluded": list(excluded), "int8_top1": acc, "drop": res.fp32_top1 - acc})
        res.int8_top1 = acc
        if res.drop <= opts.max_drop:
            break
    res.agreement = guard.top1(guard.logits(tmp / "int8.onnx", images), ref.argmax(1))
    return excluded


def _finish(fp32: Path, output: Path, card: Card, manifest: dict, folder: Path, opts, result, cached,
            force: bool) -> dict:
    from dataclasses import asdict

    from wrn_deploy.card import Precision, Step, versions, write_into_onnx
    from wrn_deploy.export.onnx_export import check_model

    res, label = result["guard"], result["nodes"]
    layers = {label[n]: ("float" if n in result["excluded"] else "int8") for n in label}
    steps = [dict(s, excluded=[label[n] for n in s["excluded"]]) for s in res.steps]
    ranking = [(label[n], err) for n, err in res.ranking[:10]]
    excluded = [label[n] for n in result["excluded"]]
    placed = result["placed"]
    residual = sorted({src for (node, _), src in placed.items() if src != "weight"
                       and any(node == a for a in label if label[a].endswith("+add"))})
    quant = {"target": opts.spec.target, "method": opts.spec.method, "rest": opts.spec.rest,
             "quantizer": opts.spec.quantizer, "placement": opts.spec.layout,
             "quantized_residual_tensors": residual, "quantized_inputs": len(placed),
             "percentile": manifest["percentile"], "calibration_folder": str(folder),
             "calibration_ids_sha256": manifest["ids_sha256"], "calibration_ids": manifest["ids"],
             "calibration_image_sha256": manifest["image_sha256"],
             "calibration_dataset": manifest["dataset"], "excluded_layers": excluded}
    # The cpu target quantizes every operator it can; what remains runs in FP32.
    rest = opts.spec.rest if opts.spec.target == "tensorrt" else "fp32"
    step = Step("quantize", {**asdict(opts.spec), "calib_size": opts.calib_size, "seed": opts.seed,
                             "split": opts.split, "max_drop": opts.max_drop},
                {**versions("onnx", "onnxruntime"), **result["versions"]})
    new_card = card.derive("onnx", fp32, step, precision=Precision("int8", rest), quantization=quant)
    with atomic_output(output, replace=force) as tmp:
        tmp.write_bytes(result["path"].read_bytes())
        write_into_onnx(tmp, new_card)
        check_model(tmp)
        size = tmp.stat().st_size
    return {"output": str(output), "source": str(fp32), "precision": str(new_card.precision),
            "target": opts.spec.target, "quantizer": opts.spec.quantizer, "placement": opts.spec.layout,
            "quantized_inputs": {f"{n}:{i}": src for (n, i), src in sorted(placed.items())},
            "method": opts.spec.method, "rest": opts.spec.rest,
            "calibration": {"folder": str(folder), "images": manifest["size"], "split": manifest["split"],
                            "reused_cached_ranges": cached, "seconds": round(result["calib_s"], 2)},
            "guard": {"images": result["guard_images"], "fp32_top1": res.fp32_top1, "int8_top1": res.int8_top1,
                      "drop": res.drop, "drop_ci95": list(res.drop_ci95), "agreement": res.agreement,
                      "max_drop": opts.max_drop, "min_images": guard_min_images(opts.max_drop) if opts.max_drop else None,
                      "steps": steps, "ranking": ranking},
            "layers": layers, "sizes": {"fp32_bytes": fp32.stat().st_size, "int8_bytes": size}}


def format_report(rep: dict) -> str:
    g, c = rep["guard"], rep["calibration"]
    bound = "no guard" if g["max_drop"] is None else f"max {g['max_drop']}"
    n8 = sum(1 for v in rep["layers"].values() if v == "int8")
    how = f"{rep['placement']} placement by {rep['quantizer']}" if rep["target"] == "tensorrt" else "every op"
    lines = [f"wrote {rep['output']} (INT8 Q/DQ for {rep['target']}, {how}, {rep['method']} calibration, "
             f"rest {rep['rest'] if rep['target'] == 'tensorrt' else 'int8/fp32'})",
             f"  calibration: {c['images']} images from {c['split']}, "
             + ("cached ranges reused" if c["reused_cached_ranges"] else f"{c['seconds']:.1f} s") + f" -> {c['folder']}",
             f"  guard on {g['images']} held-out training images: FP32 {g['fp32_top1']:.2f}%  INT8 {g['int8_top1']:.2f}%  "
             f"drop {g['drop']:+.2f} pts (95% CI {g['drop_ci95'][0]:+.2f}, {g['drop_ci95'][1]:+.2f}; {bound})  "
             f"agreement {g['agreement']:.2f}%",
             f"  layers: {n8} of {len(rep['layers'])} in INT8 (Conv/Gemm"
             + (", residual Add" if any(k.endswith("+add") for k in rep["layers"]) else "") + ")"]
    for s in g["steps"]:
        lines.append(f"    kept float: {s['excluded'][-1]:<28} -> INT8 top-1 {s['int8_top1']:.2f}% (drop {s['drop']:+.2f})")
    lines.append(f"  size: {rep['sizes']['fp32_bytes'] / 1e6:.2f} MB FP32 -> {rep['sizes']['int8_bytes'] / 1e6:.2f} MB INT8")
    return "\n".join(lines)

