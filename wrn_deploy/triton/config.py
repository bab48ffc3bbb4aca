"""``config.pbtxt`` for a WRN artifact, written from its card and its runner's metadata, and checked
three ways: protobuf parsing (tritonclient's ModelConfig, when installed), semantics against the
artifact, and (in ``repository``) a real load where a ``tritonserver`` binary exists."""

from dataclasses import dataclass

from wrn_deploy.errors import UserError

BACKENDS = {"plan": ("tensorrt", "model.plan"), "onnx": ("onnxruntime", "model.onnx"), "python": ("python", "model.py")}
DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8"}


@dataclass(frozen=True)
class ServeOptions:
    name: str
    backend: str                 # tensorrt | onnxruntime | openvino | python
    max_batch: int = 32
    instances: int = 1
    kind: str = "cpu"            # cpu | gpu
    queue_delay_us: int = 500    # dynamic batching waits this long to fill a batch
    trt_accelerator: bool = False  # onnxruntime on a GPU: its TensorRT execution accelerator


def name_ok(name: str) -> bool:
    """A model name Triton and a shell both take as it is (the Python backend starts its stub through
    bash with the model's path in the command line)."""
    return bool(name) and set(name) <= _NAME_CHARS and not name.startswith(".")


_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def preferred_sizes(max_batch: int) -> list:
    """Powers of two up to the largest batch: what dynamic batching tries to form."""
    sizes, b = [], 1
    while b <= max_batch:
        sizes.append(b)
        b *= 2
    return sizes[1:] or [max_batch]


# Triton's OpenVINO backend (github.com/triton-inference-server/openvino_backend: its README's
# "Parameters" and src/openvino.cc, read 2026-11-30 at db19304):
# - it looks for 1/model.xml (OpenVINO IR) unless default_model_filename names another file; it
#   reads model.onnx directly, so the ONNX file is served as it is, with no conversion;
# - with max_batch_size > 0 it fixes the model's batch at max_batch_size (ov::set_batch) and
#   refuses an execution whose requests add up to fewer images, unless ENABLE_BATCH_PADDING is
#   YES (it pads with zeros): so padding is on, and dynamic batching prefers the full batch;
# - it reads only its own keys from the parameters (INFERENCE_NUM_THREADS, NUM_STREAMS,
#   PERFORMANCE_HINT, HINT_BF16, SKIP_OV_DYNAMIC_BATCHSIZE, ENABLE_BATCH_PADDING, ...), so the
#   wrn_deploy.* keys pass through; it has no key for an f32 precision hint (only HINT_BF16), so
#   on CPUs where OpenVINO's default is bf16 (AMX) the served model computes in bf16;
# - instances must be KIND_CPU. Threads are left to OpenVINO (a count written here would be the
#   writing machine's, not the server's).
OPENVINO_MODEL_FILE = "model.onnx"
OPENVINO_PARAMETERS = {"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY", "ENABLE_BATCH_PADDING": "YES"}


def _parameter(key: str, value: str) -> str:
    return 'parameters { key: "' + _text(key) + '" value { string_value: "' + _text(value) + '" } }'


_TEXT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/(),+-")


def _text(value: str) -> str:
    """A string for the config, as it is: only characters that need no escaping, so no value (a
    card's arch, a tensor's name) can close its quotes and add fields of its own."""
    if not value or not set(value) <= _TEXT_CHARS:
        raise UserError(f"{value[:40]!r} cannot be written into a Triton config: use letters, digits and ._:/(),+-")
    return value


def render(card, inp, out, opts: ServeOptions) -> str:
    """The config text. ``inp``/``out``: the runner's TensorMeta of the input and output."""
    openvino = opts.backend == "openvino"
    # openvino always runs max_batch_size images (padded), so a smaller batch saves no work
    preferred = [opts.max_batch] if openvino else preferred_sizes(opts.max_batch)
    if card.input.layout not in ("NCHW", "NHWC"):
        raise UserError(f"input layout {card.input.layout[:10]!r} has no Triton format")
    lines = [f'name: "{_text(opts.name)}"', f'backend: "{_text(opts.backend)}"', f"max_batch_size: {int(opts.max_batch)}",
             "input [", "  {", f'    name: "{_text(inp.name)}"', f"    data_type: {DTYPES[inp.dtype]}",
             # the image layout, which Triton's image clients read to lay out the pixels they send
             f"    format: FORMAT_{card.input.layout}",
             f"    dims: [ {', '.join(str(d) for d in inp.shape[1:])} ]", "  }", "]",
             "output [", "  {", f'    name: "{_text(out.name)}"', f"    data_type: {DTYPES[out.dtype]}",
             f"    dims: [ {out.shape[-1]} ]", '    label_filename: "labels.txt"', "  }", "]",
             "dynamic_batching {", f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]",
             f"  max_queue_delay_microseconds: {opts.queue_delay_us}", "}",
             "instance_group [", "  {", f"    count: {opts.instances}",
             f"    kind: {'KIND_GPU' if opts.kind == 'gpu' else 'KIND_CPU'}", "  }", "]"]
    if openvino:
        lines.insert(3, f'default_model_filename: "{OPENVINO_MODEL_FILE}"')
    if opts.trt_accelerator:
        lines += ["optimization { execution_accelerators { gpu_execution_accelerator : [ {",
                  '  name : "tensorrt"', "} ] } }"]
    lines += ["model_warmup [", "  {", '    name: "zeros"', "    batch_size: 1", "    inputs {",
              f'      key: "{_text(inp.name)}"', "      value {", f"        data_type: {DTYPES[inp.dtype]}",
              f"        dims: [ {', '.join(str(d) for d in inp.shape[1:])} ]", "        zero_data: true",
              "      }", "    }", "  }", "]",
             _parameter("wrn_deploy.arch", card.arch), _parameter("wrn_deploy.precision", str(card.precision))]
    if openvino:
        lines += [_parameter(k, v) for k, v in OPENVINO_PARAMETERS.items()]
    return "\n".join(lines) + "\n"


def parse(text: str, where: str):
    """Parse with Triton's own protobuf schema: unknown fields, bad enums and wrong types fail with
    line:column. Returns the ModelConfig message, or None where tritonclient is not installed."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return None
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise UserError(f"{where}: not a valid Triton model config ({e})") from None


def check_semantics(cfg, card, inp, out, batch_range: tuple, where: str) -> None:
    """What protobuf parsing cannot see: the config must describe this artifact exactly."""
    problems = []
    if cfg.max_batch_size < 1:
        problems.append("max_batch_size must be at least 1 (the models batch on the first axis)")
    lo, hi = batch_range
    if hi is not None and cfg.max_batch_size > hi:
        problems.append(f"max_batch_size {cfg.max_batch_size} exceeds the artifact's largest batch {hi}")
    if lo > 1:
        problems.append(f"the artifact needs batches of at least {lo}; Triton sends single requests")
    for size in cfg.dynamic_batching.preferred_batch_size:
        if size > cfg.max_batch_size:
            problems.append(f"preferred batch size {size} exceeds max_batch_size {cfg.max_batch_size}")
    (ci,), (co,) = cfg.input, cfg.output
    from tritonclient.grpc import model_config_pb2 as mc

    if ci.name != inp.name or list(ci.dims) != list(inp.shape[1:]) or mc.DataType.Name(ci.data_type) != DTYPES[inp.dtype]:
        problems.append(f"input {ci.name} {list(ci.dims)} does not match the artifact's {inp.name} {list(inp.shape[1:])} "
                        f"{inp.dtype}")
    if co.name != out.name or list(co.dims) != [card.num_classes] or mc.DataType.Name(co.data_type) != DTYPES[out.dtype]:
        problems.append(f"output {co.name} {list(co.dims)} does not match the artifact's {out.name} "
                        f"[{card.num_classes}] {out.dtype}")
    if cfg.backend == "openvino":
        problems += _openvino_problems(cfg, mc)
    if problems:
        raise UserError(f"{where}: {'; '.join(problems)}")


def _openvino_problems(cfg, mc) -> list:
    """What Triton's OpenVINO backend needs beyond the schema (see OPENVINO_PARAMETERS)."""
    problems = []
    if cfg.default_model_filename != OPENVINO_MODEL_FILE:
        problems.append(f"the openvino backend must be told to read {OPENVINO_MODEL_FILE} (default_model_filename)")
    if any(g.kind != mc.ModelInstanceGroup.KIND_CPU for g in cfg.instance_group):
        problems.append("Triton's openvino backend runs KIND_CPU instances only")
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    if params.get("ENABLE_BATCH_PADDING", "").upper() != "YES":
        problems.append("the openvino backend needs ENABLE_BATCH_PADDING YES, or it refuses every execution of "
                        "fewer than max_batch_size images")
    return problems
