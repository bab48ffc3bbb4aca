"""``wrn-deploy import``: a checkpoint from torchvision, timm or a PyTorch WRN port -> a wrn-deploy
checkpoint (safetensors + card) that every other command takes."""

import math

import click

from wrn_deploy.commands.options import force_option, output_option
from wrn_deploy.data.table import NAMES

FROM = ("torchvision", "timm", "xternalz", "szagoruyko")  # foreign.layouts.FROM, without importing torch
INTERPOLATIONS = ("bilinear", "bicubic")                  # card.INTERPOLATIONS


class Resize(click.ParamType):
    """Pixels of the shorter side after resizing, or ``none`` (images taken as they are)."""

    name = "pixels|none"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "none":
            return None
        if not str(value).strip().isdigit() or int(value) < 1:
            self.fail(f"{value!r}: give a whole number of pixels (1 or more) or none", param, ctx)
        return int(value)


class Triple(click.ParamType):
    """Three finite numbers, one per RGB channel: ``0.485,0.456,0.406``."""

    name = "R,G,B"

    def __init__(self, positive: bool = False):
        self.positive = positive

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            nums = tuple(float(v) for v in str(value).split(","))
        except ValueError:
            nums = ()
        if len(nums) != 3 or not all(map(math.isfinite, nums)) or (self.positive and min(nums) <= 0):
            self.fail(f"{value!r}: give three finite{' positive' if self.positive else ''} numbers, "
                      "comma-separated (R,G,B of images in [0, 1])", param, ctx)
        return nums


@click.command(name="import")
@click.argument("source", type=click.Path(dir_okay=False))
@output_option("The wrn-deploy checkpoint to write (.safetensors; its card's JSON copy goes beside it).",
               required=True)
@click.option("--from", "from_", type=click.Choice(FROM), required=True,
              help="Whose checkpoint SOURCE is: torchvision or timm (wide_resnet50_2/101_2), xternalz "
                   "(WideResNet-pytorch) or szagoruyko (wide-residual-networks' PyTorch code).")
@click.option("--arch", help="The architecture SOURCE should hold (checked) [default: read from its shapes].")
@click.option("--weights", help="The library's name of the weights, whose metadata gives the class names and "
                                "preprocessing: torchvision IMAGENET1K_V1/IMAGENET1K_V2, timm tv_in1k/tv2_in1k/racm_in1k.")
@click.option("--data", type=click.Choice(NAMES),
              help="The dataset the weights were trained on, recorded in the card (later commands default to it).")
@click.option("--classes", type=click.Path(dir_okay=False), help="Class names, one a line, in the classifier's order.")
@click.option("--input-size", type=click.IntRange(8, 2048), help="The model's input, pixels a side (the centre crop).")
@click.option("--resize", type=Resize(), default=None,
              help="Resize the shorter side to this many pixels before the centre crop, or none.")
@click.option("--interpolation", type=click.Choice(INTERPOLATIONS), help="How images are resized (antialiased).")
@click.option("--mean", type=Triple(), help="Per-channel mean of images in [0, 1], R,G,B.")
@click.option("--std", type=Triple(positive=True), help="Per-channel standard deviation, R,G,B.")
@force_option
def import_(source, output, from_, arch, weights, data, classes, input_size, resize, interpolation, mean, std, force):
    """Import SOURCE, a checkpoint from torchvision, timm or a PyTorch WRN port, as a wrn-deploy
    checkpoint: its weights renamed onto wrn-deploy's network (refused where the layout or the shapes
    differ from the architecture they claim) and a card with its class names and preprocessing.

    \b
    SOURCE: a state dict saved with torch.save (read with weights_only=True: no pickled code)
    or a safetensors file. Card facts come from the options, else the named --weights'
    metadata, else the port's own code, else the --data dataset. docs/import.md has examples.
    """
    from wrn_deploy.foreign.convert import UNSET, ImportOptions, import_checkpoint

    given_resize = UNSET
    ctx = click.get_current_context()
    if ctx.get_parameter_source("resize") == click.core.ParameterSource.COMMANDLINE:
        given_resize = resize
    opts = ImportOptions(source=from_, arch=arch, weights=weights, data=data, classes=classes, input_size=input_size,
                         resize=given_resize, interpolation=interpolation, mean=mean, std=std)
    s = import_checkpoint(source, output, opts, force)
    click.echo(f"wrote {s['output']} (card: {s['output'].rsplit('.', 1)[0]}.json)")
    click.echo(f"  {s['arch']} from {s['from']}: {s['params'] / 1e6:.1f}M parameters, {s['classes']} classes"
               + (f", weights {s['weights']}" if s["weights"] else "")
               + (f", dataset {s['dataset']}" if s["dataset"] else ""))
    click.echo(f"  input {s['input']}: {s['preprocess']}; mean {_fmt(s['mean'])}, std {_fmt(s['std'])}")


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
