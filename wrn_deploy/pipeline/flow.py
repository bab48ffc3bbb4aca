"""Which steps run, in which order, and what a failure does.

Steps run in the order of ``plan``. A step whose ``needs`` failed (or were skipped) is blocked; a
``soft`` step (the Triton repository, serving) runs with whichever needs succeeded. A failing step
is recorded with its one-line reason and the pipeline goes on with the steps that do not depend on
it; nothing an earlier step wrote is removed. Ctrl-C stops at once: the interrupted step has no
record, so the next run starts there (training continues from its last epoch).
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wrn_deploy import limits
from wrn_deploy.errors import UserError
from wrn_deploy.pipeline import steps as S
from wrn_deploy.pipeline.records import Hashes, Records, data_fingerprint, step_key


@dataclass
class PipelineOptions:
    out: Path
    arch: str | None = None
    data: str | None = None
    data_dir: str | None = None
    checkpoint: str | None = None
    epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    eval_images: int | None = None      # None: the whole test split
    calib_size: int = limits.CALIB_SIZE
    calib_method: str = limits.CALIB_METHOD
    max_int8_drop: float | None = limits.INT8_MAX_DROP
    gates: limits.Gates = field(default_factory=limits.Gates)
    batch: int = limits.BATCH
    triton: bool = True
    bench: bool = True
    bench_requests: int = 50
    skip_bad_images: bool = False
    progress: bool = True


@dataclass
class Step:
    name: str
    run: Callable
    needs: tuple = ()
    soft: bool = False                       # runs with whichever needs succeeded
    inputs: Callable = lambda ctx: {}        # {role: file} hashed into the key
    options: dict = field(default_factory=dict)
    data: bool = False                       # reads the dataset: its fingerprint is in the key
    machine: bool = False                    # a measurement of this machine: rerun elsewhere
    unavailable: Callable = lambda: None     # why it cannot run here, or None


class Context:
    """What steps share within one run: options, paths, records and the images (loaded once)."""

    def __init__(self, opts: PipelineOptions):
        import torch

        self.opts, self.out = opts, Path(opts.out)
        from wrn_deploy.pipeline.setup import run_id

        self.hashes = Hashes()
        self.records = Records(self.out, self.hashes, run_id(self.out))
        self.states: dict = {}
        self.key = None
        self.device = opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.provider = "cpu"
        if self.device.startswith("cuda"):  # ONNX Runtime on the GPU only where onnxruntime-gpu is installed
            import onnxruntime

            self.provider = "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"
        self._memo: dict = {}

    @property
    def checkpoint(self) -> Path:
        return Path(self.opts.checkpoint) if self.opts.checkpoint else self.out / "train" / "best.safetensors"

    def artifact(self, name: str) -> Path:
        return self.out / next(a.file for a in S.ALL if a.name == name)

    def state(self, name: str) -> dict:
        return self.states[name]

    def ok(self, name: str) -> bool:
        return self.states.get(name, {}).get("status") in ("done", "cached")

    def present(self, artifacts) -> list:
        return [a for a in artifacts if self.ok(a.step)]

    def card(self, name: str):
        from wrn_deploy.card import read_card

        return read_card(self.artifact(name))

    def _once(self, key, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def evaluation_images(self) -> tuple:
        """(images, labels, Selection): the test split the report scores (the first --images)."""
        def make():
            from wrn_deploy.card import read_card
            from wrn_deploy.data import for_card

            chosen = for_card(read_card(self.checkpoint), "test", None, self.opts.data_dir,
                              progress=self.opts.progress, skip_bad=self.opts.skip_bad_images)
            if self.opts.eval_images:
                chosen = chosen.first(self.opts.eval_images)
            return chosen.images(), chosen.labels, chosen
        return self._once("images", make)

    def bench_images(self):
        return self.evaluation_images()[0][:256]

    def reference(self) -> tuple:
        """(RunResult, labels, digests) of the reference step, read back from its file."""
        def make():
            import numpy as np

            from wrn_deploy.parity.compare import RunResult

            rec = self.state("reference")
            with np.load(self.out / "eval" / "reference.npz", allow_pickle=False) as z:
                return (RunResult(rec["result"]["runner"], z["logits"], rec["result"]["seconds"]), z["labels"],
                        z["digests"])
        return self._once("reference", make)


def plan(opts: PipelineOptions) -> list:
    """Every step, upstream first."""
    o = opts
    trained = "checkpoint" if o.checkpoint else "train"
    ckpt = lambda ctx: {"checkpoint": ctx.checkpoint}
    from_artifact = lambda name: (lambda ctx: {"model": ctx.artifact(name)})
    quant = {"calib_size": o.calib_size, "method": o.calib_method, "seed": o.seed, "max_drop": o.max_int8_drop}
    if o.checkpoint:
        first = Step("checkpoint", lambda ctx, prev: S.Done([]), inputs=ckpt)
    else:
        first = Step("train", S.train, options={"arch": o.arch, "data": o.data, "epochs": o.epochs, "seed": o.seed},
                     data=True, machine=True)
    steps = [first,
             Step("export-fp32", S.export(False), (trained,), inputs=ckpt, data=True),
             Step("export-fp16", S.export(True), (trained,), inputs=ckpt, data=True),
             Step("quantize-int8", S.quantize("tensorrt"), ("export-fp32",), inputs=from_artifact("fp32"),
                  options=quant, data=True),
             Step("quantize-int8-cpu", S.quantize("cpu"), ("export-fp32",), inputs=from_artifact("fp32"),
                  options=quant, data=True)]
    openvino = S.openvino_rows()
    if openvino:
        steps.append(Step("quantize-int8-openvino", S.quantize("openvino"), ("export-fp32",),
                          inputs=from_artifact("fp32"), options=quant, data=True))
    for p in S.PLANS:
        source = p.name.removeprefix("plan-")
        steps.append(Step(p.step, S.build(source), (next(a.step for a in S.ONNX if a.name == source),),
                          inputs=from_artifact(source), machine=True, unavailable=S.tensorrt_missing))
    artifacts = S.ONNX + S.PLANS
    steps.append(Step("reference", S.reference, (trained,), inputs=ckpt, data=True, machine=True,
                      options={"eval_images": o.eval_images}))
    for a in artifacts + openvino:
        steps.append(Step(f"eval-{a.name}", S.evaluate(a), ("reference", a.step),
                          inputs=lambda ctx, a=a: {"model": ctx.artifact(a.name), **_ref(ctx)},
                          options={"gates": o.gates.__dict__, **S.runner_options(a)}, machine=True))
    if o.triton:
        present = lambda ctx: {a.name: ctx.artifact(a.name) for a in ctx.present(artifacts)}
        steps.append(Step("triton-repo", S.triton_repository, tuple(a.step for a in artifacts), soft=True,
                          inputs=present))
        steps.append(Step("serve", S.serve, ("triton-repo", "reference"),
                          inputs=lambda ctx: {**_files(ctx, "triton-repo"), **_ref(ctx)},
                          options={"gates": o.gates.__dict__, "requests": o.bench_requests}, machine=True,
                          unavailable=S.triton_missing))
    if o.bench:
        benched = [("pytorch", trained, ckpt)] + [(a.name, a.step, from_artifact(a.name)) for a in artifacts + openvino]
        for name, need, inputs in benched:
            steps.append(Step(f"bench-{name}", S.bench(name), (need,), inputs=inputs,
                              options={"requests": o.bench_requests}, machine=True))
    return steps


def _ref(ctx) -> dict:
    return {"reference": ctx.out / "eval" / "reference.npz"}


def _files(ctx, step: str) -> dict:
    rec = ctx.state(step)
    return {rel: ctx.out / rel for rel in rec.get("outputs", {})}


def _machine() -> str:
    import torch

    from wrn_deploy.bench import machine

    gpu = f"; {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return machine() + gpu


def _inputs(ctx: Context, step: Step) -> dict:
    """{role: sha256 or fingerprint} of everything the step reads: in its key and in its record."""
    inputs = {role: ctx.hashes(path) for role, path in step.inputs(ctx).items()}
    if step.data:
        inputs["data"] = ctx._once(("data", ctx.opts.data_dir),
                                   lambda: data_fingerprint(ctx.opts.data or "", ctx.opts.data_dir))
    if step.machine:
        inputs["machine"] = ctx._once("machine", _machine) + f"; device {ctx.device}"
    return inputs


def run_step(ctx: Context, step: Step) -> dict:
    failed = [n for n in step.needs if not ctx.ok(n)]
    if failed and (not step.soft or len(failed) == len(step.needs)):
        why = ctx.states[failed[0]]
        return {"status": "blocked", "reason": f"{failed[0]} {why['status']}"}
    reason = step.unavailable()
    if reason:
        return {"status": "skipped", "reason": reason}
    inputs = _inputs(ctx, step)
    ctx.key = key = step_key(step.name, step.options, inputs)
    fresh, rerun = ctx.records.fresh(step.name, key, inputs)
    if fresh:
        return {**fresh, "status": "cached"}
    previous = ctx.records.load(step.name)  # only a record that verifies (training resumes from it)
    extra = {"inputs": inputs, **({"rerun": rerun} if rerun else {})}
    ctx.records.save(step.name, key, "started", **extra)
    t0 = time.perf_counter()
    took = lambda: round(time.perf_counter() - t0, 1)
    try:
        done = step.run(ctx, previous)
    except UserError as e:
        return ctx.records.save(step.name, key, "failed", reason=str(e), seconds=took(), **extra)
    except OSError as e:  # a full disk, a permission: the machine's state, not a bug
        why = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        return ctx.records.save(step.name, key, "failed", reason=why, seconds=took(), **extra)
    except Exception as e:  # an internal error in one step: reported, and the independent steps go on
        if os.environ.get("WRN_DEPLOY_DEBUG"):
            raise
        return ctx.records.save(step.name, key, "failed", reason=f"internal error: {type(e).__name__}: {e}",
                                seconds=took(), **extra)
    return ctx.records.save(step.name, key, "done", done.outputs, result=done.result, seconds=took(), **extra)


def run_pipeline(opts: PipelineOptions, say=print) -> dict:
    """Run (or reuse) every step, then write OUT/report.json, report.md and report.png."""
    from wrn_deploy.pipeline.report import build_report, write_report

    ctx = Context(opts)
    for step in plan(opts):
        t0 = time.perf_counter()
        state = ctx.states[step.name] = run_step(ctx, step)
        say(_line(step.name, state, time.perf_counter() - t0))
    report = build_report(ctx)
    write_report(ctx.out, report)
    return report


def _line(name: str, state: dict, seconds: float) -> str:
    status = state["status"]
    detail = f": {state['reason']}" if state.get("reason") else ""
    if state.get("rerun") and status != "cached":
        detail += f" (ran again: {state['rerun']})"
    took = f" ({seconds:.1f} s)" if status in ("done", "cached", "failed") else ""
    return f"[{status:>7}] {name}{took}{detail}"
