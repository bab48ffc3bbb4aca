"""ONNX -> TensorRT plan, strongly typed: the ONNX file carries the precision (FP32, FP16 or INT8
Q/DQ), so no precision flag is set, and the same code builds on TensorRT 10.x and 11.x.

Written against the documented Python API (see docs/tensorrt.md for what has and has not run on a
real TensorRT); the CPU test suite drives it through a stand-in module with the 11.x surface.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wrn_deploy import __version__, plan_trust
from wrn_deploy.card import Card, Step, read_card, versions
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import atomic_output, check_output, sha256_file

HW_COMPAT = ("none", "ampere_plus", "same_compute_capability")


@dataclass
class BuildOptions:
    min_batch: int = 1
    opt_batch: int = 32
    max_batch: int = 256
    workspace_mib: int = 1024
    timing_cache: str | None = None
    version_compatible: bool = False
    hw_compat: str = "none"
    optimization_level: int | None = None


def _logger(trt):
    class CapturingLogger(trt.ILogger):
        """Keeps TensorRT's messages so a failure can show them."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []

        def log(self, severity, msg):
            self.messages.append(f"[{severity}] {msg}")

    return CapturingLogger()


def _parse(trt, builder, logger, onnx_path: Path):
    # STRONGLY_TYPED is required for explicit types on 10.x and is the only mode (flag ignored) on 11.x.
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    return network, parser


def _config(trt, builder, network, opts: BuildOptions):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    if opts.optimization_level is not None:
        config.builder_optimization_level = opts.optimization_level
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        chw = tuple(tensor.shape)[1:]
        profile.set_shape(tensor.name, (opts.min_batch, *chw), (opts.opt_batch, *chw), (opts.max_batch, *chw))
    config.add_optimization_profile(profile)
    if opts.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if opts.hw_compat != "none":
        level = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}[opts.hw_compat]
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)
    blob = b""
    if opts.timing_cache and Path(opts.timing_cache).exists():
        blob = Path(opts.timing_cache).read_bytes()
    config.set_timing_cache(config.create_timing_cache(blob), False)  # False: refuse another GPU's cache
    return config


def check_options(opts: BuildOptions) -> None:
    if not 1 <= opts.min_batch <= opts.opt_batch <= opts.max_batch:
        raise UserError(f"batch profile must satisfy 1 <= min <= opt <= max, got "
                        f"{opts.min_batch}/{opts.opt_batch}/{opts.max_batch}")
    if opts.hw_compat not in HW_COMPAT:
        raise UserError(f"--hw-compat must be one of {', '.join(HW_COMPAT)}")


def recorded_options(opts: BuildOptions) -> dict:
    """The options as the card and manifest record them: the timing cache by name, not by folder."""
    return {**asdict(opts), "timing_cache": opts.timing_cache and Path(opts.timing_cache).name}


def plan_card(card: Card, onnx_path: Path, plan_path: Path, opts: BuildOptions, trt_version: str) -> Card:
    """The plan keeps the ONNX file's precision and input; the batch becomes the profile's range."""
    step = Step("build", recorded_options(opts), {**versions(), "tensorrt": trt_version})
    return card.derive("plan", onnx_path, plan_path, step)


def build_engine(onnx_path, plan_path, opts: BuildOptions, sign_key=None, force: bool = False) -> dict:
    """Build, then write the plan, its manifest and (with a key) its signature; return the manifest.

    Everything that can be refused is refused before the build: outputs that exist (without
    ``force``) or are inputs, an unreadable signing key. A rebuild without a key removes the old
    signature, which would no longer match.
    """
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    check_options(opts)
    inputs = (onnx_path, sign_key)
    for out in (plan_path, plan_trust.manifest_path(plan_path), plan_trust.signature_path(plan_path)):
        check_output(out, inputs, force)
    if opts.timing_cache:  # a cache, rewritten on purpose; but never over an input or the plan
        check_output(opts.timing_cache, (*inputs, plan_path), force=True)
    key = plan_trust.load_private_key(sign_key) if sign_key else None
    card = read_card(onnx_path)
    if card.kind != "onnx":
        raise UserError(f"{onnx_path} is a {card.kind}; build takes an ONNX file made by export or quantize")
    from wrn_deploy.runners.trt_runner import import_tensorrt, require_cuda  # torch: only for a build

    trt = import_tensorrt()
    torch = require_cuda()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    config = _config(trt, builder, network, opts)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise UserError("TensorRT could not build the engine: " + " | ".join(logger.messages[-8:]))
    seconds = time.perf_counter() - t0
    data = bytes(plan)
    man = {"format": plan_trust.FORMAT, "tensorrt_version": trt.__version__,
           "gpu": torch.cuda.get_device_name(), "compute_capability": list(torch.cuda.get_device_capability()),
           "cuda_version": torch.version.cuda, "build": recorded_options(opts), "build_seconds": round(seconds, 1),
           "profile": {"min": opts.min_batch, "opt": opts.opt_batch, "max": opts.max_batch},
           "onnx": onnx_path.name, "onnx_sha256": sha256_file(onnx_path),
           "plan_sha256": hashlib.sha256(data).hexdigest(), "plan_bytes": len(data),
           "card": plan_card(card, onnx_path, plan_path, opts, trt.__version__).to_dict(),
           "producer": {"name": "wrn-deploy", "version": __version__}}
    manifest_bytes = (json.dumps(man, indent=2) + "\n").encode()
    if opts.timing_cache:
        with atomic_output(opts.timing_cache) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    with atomic_output(plan_path, replace=force) as tmp:
        tmp.write_bytes(data)
    with atomic_output(plan_trust.manifest_path(plan_path), replace=force) as tmp:
        tmp.write_bytes(manifest_bytes)
    sig = plan_trust.signature_path(plan_path)
    if key is not None:
        with atomic_output(sig, replace=force) as tmp:
            tmp.write_text(plan_trust.sign_bytes(key, data, manifest_bytes))
    elif sig.exists():
        sig.unlink()  # a signature of the previous plan: it would fail, or worse, mislead
    return man
