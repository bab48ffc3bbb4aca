"""The artifact card: what a checkpoint, ONNX file or engine is, where it came from, and what input
it expects, so any later step (or a Triton or C++ client) can run it from the artifact alone.

One typed ``Card`` and one reader/writer for every artifact kind:

- checkpoint (``.safetensors``): the card is JSON in the safetensors metadata;
- ONNX (``.onnx``): the card is JSON in ``metadata_props`` under ``wrn_deploy.card``;
- plan (``.plan``/``.engine``): the card sits in the engine manifest beside it (``model.plan.json``).

A readable JSON copy is written next to checkpoints. Every card has the same lineage: ``parent``
(the artifact it was made from: kind, path, sha256), ``origin`` (the trained checkpoint at the root
of the chain) and ``step`` (what made it: name, options, tool versions).
"""

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

from wrn_deploy import __version__
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import relative_to

FORMAT = "wrn-deploy.card/2"
ONNX_KEY = "wrn_deploy.card"
KINDS = ("checkpoint", "onnx", "plan")
COMPUTE = ("fp32", "fp16", "bf16", "int8")
PLAN_SUFFIXES = (".plan", ".engine")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stamp() -> str | None:
    """When a step ran, for artifacts: only where the user asks for a time through the
    ``SOURCE_DATE_EPOCH`` convention (reproducible-builds.org), so that the same inputs and
    options give the same bytes on any day; otherwise no time at all."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return None
    if not epoch.isdigit():
        raise UserError(f"SOURCE_DATE_EPOCH={epoch!r}: give whole seconds since 1970 (or unset it)")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def versions(*packages: str) -> dict:
    """Installed versions of the packages that made an artifact (read from metadata, no import)."""
    out = {"python": platform.python_version(), "wrn_deploy": __version__}
    for name in ("torch", "torchvision", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class Precision:
    """What an artifact computes in. INT8 models also say what their unquantized remainder runs in."""

    compute: str                # fp32 | fp16 | bf16 | int8
    rest: str | None = None     # int8 only: fp16 | fp32

    def __post_init__(self):
        if self.compute not in COMPUTE:
            raise UserError(f"precision {self.compute!r}: choose one of {', '.join(COMPUTE)}")
        if (self.compute == "int8") != (self.rest is not None) or self.rest not in (None, "fp16", "fp32"):
            raise UserError(f"precision {self}: INT8 needs its remainder (fp16 or fp32), others none")

    @classmethod
    def parse(cls, text: str) -> "Precision":
        """'fp32', 'fp16', 'bf16', 'int8+fp16' or 'int8+fp32' (the card's spelling)."""
        compute, _, rest = str(text).partition("+")
        return cls(compute, rest or None)

    def __str__(self) -> str:
        return f"{self.compute}+{self.rest}" if self.rest else self.compute


FP32, FP16 = Precision("fp32"), Precision("fp16")


@dataclass(frozen=True)
class InputSpec:
    """What the artifact's input takes. ``normalized_in_graph``: the graph computes (x - mean) / std
    itself, so a client feeds RGB values in ``value_range`` ([0, 1] floats, or 0-255 for a
    raw-pixel UINT8 input, which the graph casts and scales) and must not normalise again."""

    name: str = "images"
    layout: str = "NCHW"
    color: str = "RGB"
    dtype: str = "float32"
    value_range: tuple = (0.0, 1.0)
    normalized_in_graph: bool = True
    batch: int | None = None    # a fixed batch size, or None for a dynamic batch


INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    """How an image file becomes the model's square input, before the [0, 1] scaling and mean/std.

    With ``resize``, the shorter side is resized to ``resize`` pixels (PIL, antialiased: as
    torchvision's ``Resize`` does to PIL images, with ``int`` truncation of the longer side), then
    the centre ``input_size`` square is cropped. Without it, images are used at ``input_size`` as
    they are (CIFAR-style). The centre crop is always the card's ``input_size``."""

    resize: int | None = None
    interpolation: str = "bilinear"  # "bilinear" | "bicubic"

    def __post_init__(self):
        if self.resize is not None and (isinstance(self.resize, bool) or not isinstance(self.resize, int)
                                        or self.resize < 1):
            raise UserError(f"preprocess resize {self.resize!r} is not a positive whole number of pixels (or null)")
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(f"preprocess interpolation {self.interpolation!r}: choose one of "
                            f"{', '.join(INTERPOLATIONS)}")


def default_preprocess(input_size: int) -> Preprocess:
    """The rule of cards made before they said how they preprocess (and of wrn-deploy's own training):
    large inputs (64 pixels and more) resize the shorter side to input_size * 256/224, truncated,
    bilinear, and crop the centre; small ones take the images as they are."""
    return Preprocess(resize=int(input_size * 256 / 224) if input_size >= 64 else None)


@dataclass(frozen=True)
class Ref:
    """A pointer to another artifact: its kind, its path relative to the folder of the artifact whose
    card holds it, and the sha256 of its bytes. Relative: an absolute folder would tie the artifact
    to the machine (and the folder) that made it, and make two makes of it differ."""

    kind: str
    path: str
    sha256: str

    @classmethod
    def to(cls, kind: str, path, output) -> "Ref":
        """The artifact at ``path``, as the card of the artifact written to ``output`` records it."""
        from wrn_deploy.fileio import sha256_file

        return cls(kind, relative_to(path, output), sha256_file(path))

    def moved(self, recorded_by, output) -> "Ref":
        """This ref, recorded by the card of ``recorded_by``, as the card of ``output`` records it."""
        return replace(self, path=relative_to(Path(recorded_by).parent / self.path, output))


@dataclass(frozen=True)
class Step:
    """What made an artifact: the step's name, its options and the tool versions."""

    name: str
    options: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    at: str | None = field(default_factory=stamp)  # None unless SOURCE_DATE_EPOCH is set


@dataclass(frozen=True)
class Card:
    kind: str
    arch: str
    classes: tuple
    input_size: int
    mean: tuple
    std: tuple
    precision: Precision
    input: InputSpec
    step: Step
    parent: Ref | None = None
    origin: Ref | None = None        # the trained checkpoint at the root of the lineage
    dropout: float = 0.0
    dataset: dict = field(default_factory=dict)       # the data's identity (data.load_dataset)
    training: dict = field(default_factory=dict)      # checkpoints: recipe, epoch, metrics
    quantization: dict = field(default_factory=dict)  # INT8 models: calibration and layers
    preprocess: Preprocess | None = None  # None: the default rule for input_size (default_preprocess)

    def __post_init__(self):
        if self.preprocess is None:
            object.__setattr__(self, "preprocess", default_preprocess(int(self.input_size)))
        resize = self.preprocess.resize
        if resize is not None and resize < self.input_size:
            raise UserError(f"preprocess resize {resize} is smaller than the input size {self.input_size} "
                            "(the centre crop would not fit)")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def derive(self, kind: str, parent_path, output, step: Step, **changes) -> "Card":
        """The card of the artifact written to ``output``, made from this one (at ``parent_path``)
        by ``step``; its lineage paths are relative to ``output``'s folder."""
        parent = Ref.to(self.kind, parent_path, output)
        origin = self.origin.moved(parent_path, output) if self.origin else None
        origin = origin or (parent if self.kind == "checkpoint" else None)
        return replace(self, kind=kind, parent=parent, origin=origin, step=step, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d = {"format": FORMAT, **d, "precision": str(self.precision), "num_classes": self.num_classes}
        d["input"]["value_range"] = list(self.input.value_range)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d, where: str) -> "Card":
        """Validate a card read from ``where``; any defect is one UserError naming it."""
        if not isinstance(d, dict):
            raise UserError(f"{where}: the card is not a JSON object")
        if d.get("format") != FORMAT:
            raise UserError(f"{where}: card format {d.get('format')!r} is not {FORMAT!r} (made by another "
                            "wrn-deploy version? re-run the step that made it)")
        try:
            card = cls(kind=d["kind"], arch=d["arch"], classes=tuple(d["classes"]),
                       input_size=int(d["input_size"]), mean=tuple(map(float, d["mean"])),
                       std=tuple(map(float, d["std"])), precision=Precision.parse(d["precision"]),
                       input=InputSpec(**dict(d["input"], value_range=tuple(d["input"]["value_range"]))),
                       step=Step(**d["step"]), parent=_ref(d.get("parent")), origin=_ref(d.get("origin")),
                       dropout=float(d.get("dropout", 0.0)), dataset=dict(d.get("dataset") or {}),
                       training=dict(d.get("training") or {}), quantization=dict(d.get("quantization") or {}),
                       preprocess=_preprocess(d.get("preprocess")))
        except UserError as e:
            raise UserError(f"{where}: {e.format_message()}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"{where}: the card is malformed ({type(e).__name__}: {e})") from None
        _check(card, d, where)
        return card


def _preprocess(d) -> Preprocess | None:
    if d is None:  # a card made before the field: Card applies the rule it was made under
        return None
    if not isinstance(d, dict):
        raise UserError(f"preprocess must be an object like {{\"resize\": 256, \"interpolation\": \"bilinear\"}}, "
                        f"got {d!r}")
    unknown = sorted(set(d) - {"resize", "interpolation"})
    if unknown:
        raise UserError(f"preprocess has unknown field {unknown[0]!r} (it takes resize and interpolation)")
    return Preprocess(**d)


def _ref(d) -> Ref | None:
    return None if d is None else Ref(**d)


# Unicode categories a class name may not hold: it lands in labels.txt (one a line), one-line text
# output (wrn-classify: tab-separated), Markdown and JSON. Control characters (newline, tab, escape),
# line and paragraph separators, and invisible format characters (bidirectional overrides,
# zero-width spaces) would split or disguise what a reader sees. Markup (<, |, *) is allowed and
# escaped where a format needs it (parity.report.md; JSON escapes itself).
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
MAX_CLASS_NAME = 200  # characters


def class_name_problem(index: int, name) -> str | None:
    """Why class ``index`` named ``name`` cannot go into a card, or None."""
    import unicodedata

    if not isinstance(name, str) or not name.strip():
        return f"class {index} has no name"
    bad = next((c for c in name if unicodedata.category(c) in _UNSAFE_CATEGORIES), None)
    if bad is not None:
        return (f"class {index} ({name!r}) has a control, separator or invisible character (U+{ord(bad):04X}); "
                "class names are written one a line")
    if name != name.strip():
        return f"class {index} ({name!r}) starts or ends with white space"
    if len(name) > MAX_CLASS_NAME:
        return f"class {index} has a name of {len(name)} characters, more than {MAX_CLASS_NAME}"
    return None


def check_class_names(classes, where: str) -> None:
    """One UserError naming the first class name that is unsafe where it lands, or a repeated one."""
    for i, name in enumerate(classes):
        problem = class_name_problem(i, name)
        if problem:
            raise UserError(f"{where}: {problem}")
    seen: dict = {}
    for i, name in enumerate(classes):
        if name in seen:
            raise UserError(f"{where}: classes {seen[name]} and {i} have the same name {name!r}")
        seen[name] = i


LAYOUTS = ("NCHW", "NHWC")


def _arch_problem(arch) -> list:
    """A WRN name as ``parse_arch`` reads it, and nothing more: the name goes into files other tools
    parse (Triton's config.pbtxt), so a card cannot smuggle text into them."""
    import re

    from wrn_deploy.arch.names import parse_arch

    if not isinstance(arch, str) or not re.fullmatch(r"[A-Za-z0-9(),-]+", arch):
        return [f"arch {str(arch)[:40]!r} is not a WRN name"]
    try:
        parse_arch(arch)
    except UserError:
        return [f"arch {arch[:40]!r} is not a WRN name"]
    return []


def _check(card: Card, d: dict, where: str) -> None:
    problems = []
    if card.kind not in KINDS:
        problems.append(f"kind {card.kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(d["classes"], list) or not card.classes or not all(isinstance(c, str) for c in card.classes):
        problems.append("classes must be a non-empty list of names")
    else:
        problems += [p for p in (class_name_problem(i, c) for i, c in enumerate(card.classes)) if p][:1]
    n = d.get("num_classes", len(card.classes))
    if not isinstance(n, int) or isinstance(n, bool):
        problems.append(f"num_classes must be a whole number, got {n!r} ({type(n).__name__})")
    elif n != len(card.classes):
        problems.append(f"it names {len(card.classes)} classes but says num_classes={n}")
    if card.input_size < 1:
        problems.append(f"input_size {card.input_size} is not positive")
    if len(card.mean) != 3 or len(card.std) != 3 or not all(map(math.isfinite, card.mean + card.std)) \
            or min(card.std) <= 0:
        problems.append("mean and std must be three finite numbers each, std positive")
    if not 0 <= card.dropout < 1:
        problems.append(f"dropout {card.dropout} is outside [0, 1)")
    problems += _arch_problem(card.arch)
    if card.input.layout not in LAYOUTS:
        problems.append(f"input layout {card.input.layout!r} is not one of {', '.join(LAYOUTS)}")
    if problems:
        raise UserError(f"{where}: the card is invalid: {'; '.join(problems)}")


def new_card(arch: str, classes, input_size: int, mean, std, step: Step, **extra) -> Card:
    """The card of a freshly trained checkpoint: FP32, the input not normalised by the bare network
    (wrn-deploy's runners wrap it with the mean/std; exported graphs carry them inside)."""
    check_class_names(list(classes), "the dataset's class names")
    return Card(kind="checkpoint", arch=arch, classes=tuple(classes), input_size=int(input_size),
                mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std), precision=FP32,
                input=InputSpec(normalized_in_graph=False), step=step, **extra)


# -- reading and writing, one function per direction for every artifact kind ------------------------
def artifact_kind(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        return "checkpoint"
    if suffix == ".onnx":
        return "onnx"
    if suffix in PLAN_SUFFIXES:
        return "plan"
    raise UserError(f"{path}: unknown artifact type {suffix or '(no suffix)'}; expected .safetensors, "
                    ".onnx or .plan")


def read_card(path) -> Card:
    """The card of any artifact, read without loading its weights or engine."""
    path = Path(path)
    kind = artifact_kind(path)
    if not path.is_file():
        raise UserError(f"{kind} {path} " + ("is not a regular file" if path.exists() else "does not exist"))
    raw = {"checkpoint": _raw_from_safetensors, "onnx": _raw_from_onnx, "plan": _raw_from_manifest}[kind](path)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        raise UserError(f"{path}: the card is not valid JSON") from None
    card = Card.from_dict(data, str(path))
    if card.kind != kind:
        raise UserError(f"{path}: its card describes a {card.kind}, but the file is a {kind}")
    return card


def _raw_from_safetensors(path: Path) -> str:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"checkpoint {path} is corrupt or not a safetensors file ({e})") from None
    if "card" not in meta:
        raise UserError(f"checkpoint {path} has no wrn-deploy card in its metadata")
    return meta["card"]


def _raw_from_onnx(path: Path) -> str:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a damaged file
        raise UserError(f"{path} is not a readable ONNX file ({type(e).__name__})") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise UserError(f"{path} keeps its weights in external data files; wrn-deploy reads only self-contained "
                        "ONNX files (its own exports are)")
    props = {p.key: p.value for p in model.metadata_props}
    if ONNX_KEY not in props:
        raise UserError(f"{path} has no wrn-deploy card in its metadata (was it made by wrn-deploy?)")
    return props[ONNX_KEY]


def manifest_path(plan) -> Path:
    """Where a plan's manifest (its card, hashes and build facts) lives."""
    return Path(str(plan) + ".json")


def _raw_from_manifest(path: Path) -> str:
    man = manifest_path(path)
    if not man.is_file():
        raise UserError(f"{path} has no manifest ({man.name}), so its card is unknown")
    try:
        data = json.loads(man.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{man} is not valid JSON") from None
    if not isinstance(data, dict) or "card" not in data:
        raise UserError(f"{man} is not a wrn-deploy engine manifest (no card)")
    return json.dumps(data["card"])


def safetensors_metadata(card: Card) -> dict:
    return {"card": card.to_json()}


def card_from_safetensors_metadata(meta: dict, where: str) -> Card:
    if "card" not in meta:
        raise UserError(f"checkpoint {where} has no wrn-deploy card in its metadata")
    try:
        return Card.from_dict(json.loads(meta["card"]), where)
    except json.JSONDecodeError:
        raise UserError(f"checkpoint {where} has an unreadable card") from None


def write_into_onnx(path, card: Card) -> None:
    """Store the card (and a few flat keys that model viewers show) in an ONNX file's metadata."""
    import onnx

    model = onnx.load(str(path))
    props = {ONNX_KEY: card.to_json(), "arch": card.arch, "precision": str(card.precision),
             "input": f"{card.input.name} {card.input.layout} {card.input.color} {card.input.dtype} in "
                      f"[{', '.join(f'{v:g}' for v in card.input.value_range)}]"
                      + (", normalised inside the graph" if card.input.normalized_in_graph else "")}
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=str(v))
    model.producer_name, model.producer_version = "wrn-deploy", __version__
    _strip_stack_traces(model.graph)
    for fn in model.functions:
        _strip_metadata(fn.node)
    onnx.save(model, str(path))


# torch.onnx records, per node, the Python stack that made it: absolute source paths of the
# exporting machine (about half the metadata). The other per-node notes (scopes, classes) are kept.
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"


def _strip_stack_traces(graph) -> None:
    _strip_metadata(graph.node)
    for v in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        _drop_key(v.metadata_props)
    for node in graph.node:
        for attr in node.attribute:
            for sub in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
                _strip_stack_traces(sub)


def _strip_metadata(nodes) -> None:
    for node in nodes:
        _drop_key(node.metadata_props)


def _drop_key(props) -> None:
    keep = [(p.key, p.value) for p in props if p.key != STACK_TRACE_KEY]
    if len(keep) != len(props):
        del props[:]
        for k, v in keep:
            props.add(key=k, value=v)


def write_json_copy(path, card: Card) -> None:
    """The readable JSON card beside an artifact (``model.safetensors`` -> ``model.json``)."""
    from wrn_deploy.fileio import write_json

    write_json(Path(path).with_suffix(".json"), card.to_dict())
