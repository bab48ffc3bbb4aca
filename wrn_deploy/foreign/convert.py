"""``wrn-deploy import``: a foreign checkpoint -> a wrn-deploy checkpoint (safetensors and card),
written by the same writer as training, so every later command takes it unchanged."""

from dataclasses import dataclass
from pathlib import Path

from wrn_deploy.errors import UserError

UNSET = object()  # --resize not given (None is a given "no resize")


@dataclass
class ImportOptions:
    source: str                     # --from: a key of layouts.LAYOUTS
    arch: str | None = None         # the claimed architecture (checked against the weights)
    weights: str | None = None      # the library's name for the weights: their metadata fills the card
    data: str | None = None         # the dataset it was trained on (recorded; names, statistics)
    classes: str | None = None      # a file of class names, one a line
    input_size: int | None = None
    resize: object = UNSET          # int, None (no resize) or UNSET
    interpolation: str | None = None
    mean: tuple | None = None
    std: tuple | None = None

    def given(self) -> dict:
        """The card facts given as options (they override every other source)."""
        out = {k: getattr(self, k) for k in ("input_size", "interpolation", "mean", "std", "data")
               if getattr(self, k) is not None}
        if self.resize is not UNSET:
            out["resize"] = self.resize
        return out

    def record(self) -> dict:
        """The options as the card's step records them (no paths of this machine)."""
        out = {"from": self.source, "arch": self.arch, "weights": self.weights, "data": self.data,
               **{k: v for k, v in self.given().items() if k != "data"}}
        if self.classes is not None:
            out["classes"] = Path(self.classes).name
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


def json_copy(output: Path) -> Path:
    return output.with_suffix(".json")


def import_checkpoint(source, output, opts: ImportOptions, force: bool = False) -> dict:
    """Write ``output`` (.safetensors, with the card's JSON copy beside it); returns a summary."""
    import torch

    from wrn_deploy.arch import create_model
    from wrn_deploy.checkpoint import save_checkpoint
    from wrn_deploy.fileio import check_output, sha256_file
    from wrn_deploy.foreign.layouts import LAYOUTS, check_claim, check_family, held_arch, to_wrn
    from wrn_deploy.foreign.read import read_tensors

    source, output = Path(source), Path(output)
    if output.suffix.lower() != ".safetensors":
        raise UserError(f"{output}: a wrn-deploy checkpoint is a .safetensors file")
    for out in (output, json_copy(output)):
        check_output(out, (source,), force)
    layout = LAYOUTS[opts.source]
    state = read_tensors(source)
    check_family(state, layout, source)
    try:
        held = held_arch(state, layout)
    except UserError as e:
        raise UserError(f"{source}: {e.format_message()}") from None
    arch = check_claim(opts.arch, held, source)
    fc = state.get("fc.weight")
    if fc is None or fc.dim() != 2 or not fc.shape[0]:
        raise UserError(f"{source} has no classifier weight fc.weight (classes x features)")
    num_classes = int(fc.shape[0])
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in create_model(arch, num_classes).state_dict().items()}
    card = make_card(card_facts(opts, arch, layout.name), arch, num_classes, opts, source, sha256_file(source))
    tensors = to_wrn(state, layout, arch, expected, source)
    save_checkpoint(output, tensors, card)
    pre = card.preprocess
    return {"output": str(output), "arch": arch, "from": f"{layout.name} checkpoint {source.name}",
            "classes": card.num_classes,
            "params": sum(v.numel() for k, v in tensors.items() if not k.endswith(("running_mean", "running_var",
                                                                                  "num_batches_tracked"))),
            "input": f"{card.input_size}x{card.input_size}", "dataset": card.dataset.get("name"),
            "preprocess": (f"resize the shorter side to {pre.resize} ({pre.interpolation}), centre crop "
                           f"{card.input_size}" if pre.resize else f"images as they are, {card.input_size} pixels"),
            "mean": card.mean, "std": card.std, "weights": opts.weights}


def card_facts(opts: ImportOptions, arch: str, layout_name: str) -> dict:
    """Class names, input size, resize, interpolation, mean, std and dataset, each from the first
    source that has it: the options, the named weights' metadata, the layout's own code, the dataset."""
    from wrn_deploy.arch import default_input_size
    from wrn_deploy.card import default_preprocess
    from wrn_deploy.foreign import metadata as M

    named = {}
    if opts.weights:
        if layout_name not in ("torchvision", "timm"):
            raise UserError(f"--weights names torchvision's or timm's published weights; --from {layout_name} has none")
        named = (M.torchvision_facts if layout_name == "torchvision" else M.timm_facts)(arch, opts.weights)
    data = opts.data or named.get("data")
    facts = {**M.dataset_facts(data), **M.layout_facts(layout_name), **named, **opts.given()}
    if opts.classes:
        facts["classes"] = M.read_classes(opts.classes)
    facts.setdefault("input_size", default_input_size(arch))
    if "resize" not in facts:
        facts["resize"] = default_preprocess(facts["input_size"]).resize
    facts.setdefault("interpolation", "bilinear")
    for need, hint in (("classes", "--classes FILE (one name a line)"), ("mean", "--mean R,G,B"),
                       ("std", "--std R,G,B")):
        if need not in facts:
            raise UserError(f"the card needs the model's {need if need != 'classes' else 'class names'}: give "
                            f"{hint}, or --weights (torchvision, timm) or --data with a dataset that has them")
    return facts


def make_card(facts: dict, arch: str, num_classes: int, opts: ImportOptions, source: Path, sha256: str):
    from wrn_deploy.card import Preprocess, Step, new_card, versions

    classes = facts["classes"]
    if len(classes) != num_classes:
        raise UserError(f"{source}: its classifier has {num_classes} outputs, but {len(classes)} class names "
                        "were given")
    imported = {"from": opts.source, "file": source.name, "sha256": sha256, **facts.get("published", {})}
    step = Step("import", opts.record(), versions(*(["timm"] if opts.source == "timm" else [])))
    return new_card(arch, classes, facts["input_size"], facts["mean"], facts["std"], step,
                    dataset={"name": facts["data"]} if facts.get("data") else {},
                    training={"imported": imported},
                    preprocess=Preprocess(facts["resize"], facts["interpolation"]))
