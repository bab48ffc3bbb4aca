"""The pipeline's steps. Each is a thin call into the step modules the single commands use (train,
export, quantize, build, eval, triton, bench), so a pipeline artifact is the same file the command
would write. A step returns ``Done(outputs, result)``: the files it wrote and what the report needs.

Layout of OUT::

    train/best.safetensors      the trained checkpoint (or --checkpoint, used where it is)
    model.onnx                  FP32, verified against PyTorch      (+ model.report.json)
    model.fp16.onnx             FP16
    model.int8.onnx             INT8 Q/DQ for TensorRT (rest FP16)
    model.int8-cpu.onnx         INT8 for ONNX Runtime's CPU kernels
    model.int8-openvino.onnx    INT8 for OpenVINO's CPU plugin, where the openvino package is installed
    calibration/                the calibration manifests and ranges
    model*.plan                 TensorRT engines, where TensorRT and a GPU are present
    triton/                     the Triton model repository
    eval/reference.npz          the PyTorch FP32 logits on the evaluation images (one run for all)
    steps/NAME.json             each step's record
"""

from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy.errors import UserError


@dataclass
class Done:
    outputs: list
    result: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    name: str        # fp32, fp16, int8, int8-cpu, plan-fp32, ...
    file: str        # its file name in OUT
    step: str        # the step that writes it
    backend: str     # onnxruntime | tensorrt | openvino
    hint: str = "f32"   # openvino: the inference precision hint


ONNX = (Artifact("fp32", "model.onnx", "export-fp32", "onnxruntime"),
        Artifact("fp16", "model.fp16.onnx", "export-fp16", "onnxruntime"),
        Artifact("int8", "model.int8.onnx", "quantize-int8", "onnxruntime"),
        Artifact("int8-cpu", "model.int8-cpu.onnx", "quantize-int8-cpu", "onnxruntime"))
# Engines from the FP32, FP16 and TensorRT-form INT8 graphs (the CPU form's U8 activations are not
# what TensorRT's explicit quantization takes).
PLANS = tuple(Artifact(f"plan-{a.name}", a.file.replace(".onnx", ".plan"), f"build-{a.name}", "tensorrt")
              for a in ONNX[:3])
# OpenVINO rows, where the openvino package is installed: the FP32 file under both precision hints,
# and the openvino-form INT8 (quantize --target openvino).
OPENVINO = (Artifact("openvino-fp32", "model.onnx", "export-fp32", "openvino"),
            Artifact("openvino-bf16", "model.onnx", "export-fp32", "openvino", "bf16"),
            Artifact("int8-openvino", "model.int8-openvino.onnx", "quantize-int8-openvino", "openvino"))
ALL = ONNX + PLANS + OPENVINO


def openvino_rows() -> tuple:
    """The OpenVINO rows where OpenVINO is installed, none elsewhere (the pipeline's cost is unchanged)."""
    from wrn_deploy.runners.openvino_runner import available

    return OPENVINO if available() else ()


def runner_options(a: Artifact) -> dict:
    return {"runtime": "openvino", "precision_hint": a.hint} if a.backend == "openvino" else {}


def tensorrt_missing() -> str | None:
    """Why engines cannot be built here, or None."""
    import importlib.util

    import torch

    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip install 'wrn-deploy[trt]' on a machine with an NVIDIA GPU)"
    if not torch.cuda.is_available():
        return "TensorRT needs an NVIDIA GPU; PyTorch sees none here"
    return None


def triton_missing() -> str | None:
    from wrn_deploy.triton.server import find_tritonserver

    if find_tritonserver() is None:
        return "no tritonserver here (pip install 'wrn-deploy[serve]', or put tritonserver on PATH)"
    return None


# --- producing artifacts ---------------------------------------------------------------------------

def train(ctx, previous: dict | None) -> Done:
    from wrn_deploy.train.config import TrainConfig
    from wrn_deploy.train.loop import Trainer
    from wrn_deploy.zoo import find_recipe

    o, run_dir = ctx.opts, ctx.out / "train"
    # An interrupted training of the same configuration continues from its last epoch.
    resume = bool(previous and previous.get("status") == "started" and previous.get("key") == ctx.key
                  and (run_dir / "last.safetensors").is_file())
    cfg = TrainConfig.from_recipe(find_recipe(o.arch, o.data), arch=o.arch, dataset=o.data, out=str(run_dir),
                                  data_dir=o.data_dir, epochs=o.epochs, seed=o.seed, device=ctx.device,
                                  resume=resume, force=not resume and run_dir.exists(),
                                  skip_bad_images=o.skip_bad_images, progress=o.progress)
    summary = Trainer(cfg).run()
    files = [run_dir / f for f in ("best.safetensors", "best.json", "last.safetensors", "last.json")]
    return Done([f for f in files if f.is_file()],
                {"epochs": cfg.epochs, "best_epoch": summary["best_epoch"], "val_acc": summary["val_acc"],
                 "test_acc": summary["test_acc"], "device": ctx.device, "resumed": resume})


def export(fp16: bool):
    def step(ctx, previous) -> Done:
        from wrn_deploy.export.checkpoint_to_onnx import ExportOptions, export_checkpoint, report_path

        o = ctx.opts
        out = ctx.artifact("fp16" if fp16 else "fp32")
        rep = export_checkpoint(ctx.checkpoint, out, ExportOptions(fp16=fp16, data_dir=o.data_dir,
                                                                   skip_bad_images=o.skip_bad_images), force=True)
        v = rep.get("verification") or {}
        return Done([out, report_path(out)], {"verification": v})
    return step


def quantize(target: str):
    def step(ctx, previous) -> Done:
        from wrn_deploy.quant.onnx_to_int8 import QuantOptions, quantize_onnx
        from wrn_deploy.quant.qdq import QuantSpec

        o = ctx.opts
        out = ctx.artifact({"tensorrt": "int8", "cpu": "int8-cpu", "openvino": "int8-openvino"}[target])
        opts = QuantOptions(spec=QuantSpec(target=target, method=o.calib_method), data_dir=o.data_dir,
                            calib_size=o.calib_size,
                            seed=o.seed, calib_dir=str(ctx.out / "calibration"), max_drop=o.max_int8_drop,
                            skip_bad_images=o.skip_bad_images, progress=o.progress)
        rep = quantize_onnx(ctx.artifact("fp32"), out, opts, force=True)
        folder = Path(rep["calibration"]["folder"])
        return Done([out, out.with_suffix(".report.json"), *sorted(p for p in folder.iterdir() if p.is_file())],
                    {"calibration": {**rep["calibration"], "method": rep["method"], "manifest": str(folder / "manifest.json")},
                     "guard": {k: v for k, v in (rep["guard"] or {}).items() if k not in ("steps", "ranking")},
                     "excluded_layers": [s["excluded"][-1] for s in (rep["guard"] or {}).get("steps", [])]})
    return step


def build(source: str):
    def step(ctx, previous) -> Done:
        from wrn_deploy.card import manifest_path
        from wrn_deploy.engine.onnx_to_plan import BuildOptions, build_engine

        plan = ctx.artifact(f"plan-{source}")
        man = build_engine(ctx.artifact(source), plan, BuildOptions(), force=True)
        return Done([plan, manifest_path(plan)], {"gpu": man["gpu"], "tensorrt": man["tensorrt_version"],
                                                  "build_seconds": man["build_seconds"]})
    return step


def triton_repository(ctx, previous) -> Done:
    """One model per artifact, all in OUT/triton: ONNX files through the Python backend (it runs
    them with the same runner as eval, in any tritonserver), plans through the native TensorRT one."""
    import shutil

    from wrn_deploy.fileio import scratch_dir
    from wrn_deploy.triton.config import ServeOptions
    from wrn_deploy.triton.repository import write_repository

    final = ctx.out / "triton"
    models = {}
    with scratch_dir("triton-repo") as tmp:
        repo = Path(tmp) / "triton"
        for a in ctx.present(ONNX + PLANS):
            backend = "tensorrt" if a.backend == "tensorrt" else "python"
            write_repository(ctx.artifact(a.name), repo, ServeOptions(f"wrn-{a.name}", backend), check_load=False)
            models[a.name] = {"model": f"wrn-{a.name}", "backend": backend}
        staged = ctx.out / ".triton.wrn-tmp"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(repo, staged)
    shutil.rmtree(final, ignore_errors=True)
    staged.rename(final)
    return Done(sorted(p for p in final.rglob("*") if p.is_file()), {"models": models})


# --- measuring them --------------------------------------------------------------------------------

def reference(ctx, previous) -> Done:
    """The PyTorch FP32 checkpoint on the evaluation images, once; every candidate pairs with it."""
    import numpy as np

    from wrn_deploy.fileio import atomic_output
    from wrn_deploy.parity.compare import run
    from wrn_deploy.runners import runner_for

    images, labels, chosen = ctx.evaluation_images()
    res = run(runner_for(ctx.checkpoint, device=ctx.device), images, ctx.opts.batch, ctx.opts.progress)
    out = ctx.out / "eval" / "reference.npz"
    out.parent.mkdir(exist_ok=True)
    with atomic_output(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, logits=res.logits, labels=labels, digests=np.array(chosen.part.image_digests()))
    right = res.logits.argmax(1) == labels
    top5 = (np.argsort(-res.logits, 1)[:, :5] == labels[:, None]).any(1)
    return Done([out], {"runner": res.runner, "seconds": round(res.seconds, 2),
                        "top1": float(100 * right.mean()), "top5": float(100 * top5.mean()),
                        "data": {"dataset": chosen.dataset, "split": chosen.split, "images": len(chosen),
                                 "identity": {k: v for k, v in chosen.identity.items() if k != "classes"}}})


def _eval_options(ctx):
    from wrn_deploy.parity.evaluate import EvalOptions

    return EvalOptions(provider=ctx.provider, device=ctx.device, batch=ctx.opts.batch, gates=ctx.opts.gates,
                       progress=ctx.opts.progress)


def evaluate(artifact: Artifact):
    """``eval``'s own scoring of one artifact, against the reference step's recorded run."""
    def step(ctx, previous) -> Done:
        from wrn_deploy.parity.evaluate import candidate, score

        ref, labels, digests = ctx.reference()
        images, _, _ = ctx.evaluation_images()
        from dataclasses import replace

        opts = replace(_eval_options(ctx), **runner_options(artifact))
        cand = candidate(ctx.artifact(artifact.name), opts)
        return Done([], {"precision": str(cand.card.precision),
                         **score(cand, ref, images, labels, list(digests), opts)})
    return step


def bench(name: str):
    """Latency of one image per request, and throughput at batch 32, through the artifact's runner."""
    def step(ctx, previous) -> Done:
        from wrn_deploy import bench as B
        from wrn_deploy.runners import runner_for

        path = ctx.checkpoint if name == "pytorch" else ctx.artifact(name)
        x = ctx.bench_images()
        kw = {"device": ctx.device} if name == "pytorch" else \
            {"provider": ctx.provider, **runner_options(next(a for a in ALL if a.name == name))}
        one = B.bench_local(runner_for(path, **kw), x, 1, ctx.opts.bench_requests).to_dict()
        many = B.bench_local(runner_for(path, **kw), x, 32, max(10, ctx.opts.bench_requests // 8)).to_dict()
        return Done([], {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"], "images_per_s": many["images_per_s"],
                         "requests": [one["requests"], many["requests"]]})
    return step


def serve(ctx, previous) -> Done:
    """Serve the repository in a real tritonserver on loopback, score every model it can load on the
    evaluation images over HTTP (``eval``'s scoring, through a TritonRunner), and time it like ``bench``."""
    from wrn_deploy import bench as B
    from wrn_deploy.parity.evaluate import Candidate, score
    from wrn_deploy.runners.triton_runner import TritonRunner
    from wrn_deploy.triton.server import served_repository

    ref, labels, digests = ctx.reference()
    images = ctx.evaluation_images()[0]
    models = ctx.state("triton-repo")["result"]["models"]
    served = {a: m for a, m in models.items() if m["backend"] == "python"}
    if not served:
        raise UserError("the repository holds no model this tritonserver can load (the Python backend's)")
    rows, x, opts = {}, ctx.bench_images(), _eval_options(ctx)
    log = ctx.out / "eval" / "tritonserver.log"
    log.parent.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    with served_repository(ctx.out / "triton", models=tuple(m["model"] for m in served.values()), log=log) as server:
        for name, m in served.items():
            card = ctx.card(name)
            runner = TritonRunner(server.http, m["model"], "http", name=f"triton-{m['backend']}-http")
            scored = score(Candidate(ctx.artifact(name), card, runner), ref, images, labels, list(digests), opts)
            one = B.bench_triton("http", server.http, m["model"], x, 1, ctx.opts.bench_requests, 1).to_dict()
            many = B.bench_triton("http", server.http, m["model"], x, 32, max(10, ctx.opts.bench_requests // 8),
                                  1).to_dict()
            rows[name] = {"model": m["model"], "precision": str(card.precision), **scored,
                          "bench": {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"],
                                    "images_per_s": many["images_per_s"]}}
    return Done([], {"models": rows, "skipped": sorted(set(models) - set(served))})
