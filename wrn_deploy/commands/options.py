"""Options that several commands share, spelled the same everywhere.

docs/cli.md lists every option with its meaning and the commands that take it (a test checks it
against the commands). An option that was renamed keeps its old spelling as a hidden alias: it
still parses, errors name the spelling that was typed, and ``--help`` shows only the new name.
"""

import math
import re

import click

from wrn_deploy.data.table import NAMES


class Renamed(click.Option):
    """A click option that also accepts ``old`` spellings, hidden from ``--help``.

    The old spellings are registered with the parser under their own destination, so the command
    can tell which spelling was typed (``spelled``); giving both spellings is an error.
    """

    def __init__(self, param_decls=None, old=(), **attrs):
        self.old = tuple(old)
        super().__init__([*(param_decls or ()), *self.old], **attrs)
        if self.old and (self.is_flag or self.multiple or self.count):
            raise TypeError(f"{self.name}: old spellings are supported for single-value options only")

    def _old_dest(self, spelling: str) -> str:
        return f"{self.name} {spelling}"

    def _current_opts(self) -> list:
        return [o for o in self.opts if o not in self.old]

    def add_to_parser(self, parser, ctx) -> None:
        every, self.opts = self.opts, self._current_opts()
        try:
            super().add_to_parser(parser, ctx)
        finally:
            self.opts = every
        for spelling in self.old:
            parser.add_option(obj=self, opts=[spelling], dest=self._old_dest(spelling), action="store",
                              nargs=self.nargs)

    def consume_value(self, ctx, opts):
        typed = [s for s in self.old if self._old_dest(s) in opts]
        if typed:
            if self.name in opts or len(typed) > 1:
                names = " and ".join([self._current_opts()[-1], *typed] if self.name in opts else typed)
                raise click.UsageError(f"{names} are one option ({self._current_opts()[-1]}): give it once", ctx)
            opts = {**opts, self.name: opts[self._old_dest(typed[0])]}
        ctx.meta.setdefault("wrn_deploy.spelled", {})[self.name] = typed[0] if typed else self._current_opts()[-1]
        return super().consume_value(ctx, opts)

    def get_error_hint(self, ctx) -> str:
        typed = ctx.meta.get("wrn_deploy.spelled", {}).get(self.name) if ctx is not None else None
        return f"'{typed}'" if typed in self.old else super().get_error_hint(ctx).replace(
            "".join(f" / '{o}'" for o in self.old), "")

    def get_help_record(self, ctx):
        every, self.opts = self.opts, self._current_opts()
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = every


def option(*param_decls, old=(), **attrs):
    """``click.option`` whose ``old`` spellings still parse but are hidden from ``--help``."""
    return click.option(*param_decls, cls=Renamed, old=old, **attrs)


def spelled(name: str) -> str:
    """The spelling of option ``name`` (its parameter name) that the user typed, or its current
    long name: messages then speak the user's words."""
    ctx = click.get_current_context()
    known = ctx.meta.get("wrn_deploy.spelled", {})
    if name in known:
        return known[name]
    for p in ctx.command.params:
        if p.name == name and p.opts:
            return max(p.opts, key=len)
    return name


def data_options(default_help: str = "the model's", default: str | None = None):
    """``--data NAME`` and ``--data-dir DIR``: which dataset's images a command uses."""

    def decorate(f):
        f = click.option("--skip-bad-images", is_flag=True,
                         help="Leave out unreadable images (and say how many) instead of stopping.")(f)
        f = click.option("--data-dir", type=click.Path(file_okay=False),
                         help="Where the dataset lives (torchvision files or train/ and test/ class folders).")(f)
        shown = {"default": default, "show_default": True} if default else {}
        return click.option("--data", type=click.Choice(NAMES), **shown,
                            help="Dataset" + ("." if default else f" [default: {default_help}]."))(f)

    return decorate


class Finite(click.FloatRange):
    """A float in [lo, hi] that is a number: NaN and infinities pass click's range checks."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number", param, ctx)
        return value


class Device(click.ParamType):
    """Where PyTorch runs: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (the one parser for --device)."""

    name = "device"
    FORMS = "auto, cpu, cuda or cuda:N"

    def convert(self, value, param, ctx):
        if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            self.fail(f"{value!r}: use {self.FORMS}", param, ctx)
        return value

    def get_metavar(self, param, ctx=None):
        return "DEVICE"


def resolve_device(device: str) -> str:
    """``auto`` made concrete (a CUDA GPU where PyTorch sees one, else the CPU); a CUDA device that
    PyTorch cannot see is a user error."""
    import torch

    from wrn_deploy.errors import UserError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    return device


def device_option(default: str = "auto", help: str = "Where PyTorch runs."):
    return click.option("--device", type=Device(), default=default, show_default=True,
                        help=f"{help} DEVICE: {Device.FORMS}.")


def output_option(help: str, *, name: str = "output", required: bool = False, folder: bool = False, old=()):
    """``-o/--output``: where a command writes (a file, a folder or a prefix; ``help`` says which)."""
    path = click.Path(file_okay=False) if folder else click.Path(dir_okay=False)
    return option("-o", "--output", name, old=old, required=required, type=path, help=help)


def images_option(help: str, *, name: str = "images", default: int | None = None, minimum: int = 1, old=()):
    """``--images N``: how many of the evaluation split's images a command runs (the first N)."""
    shown = {"default": default, "show_default": True} if default is not None else {}
    return option("--images", name, old=old, type=click.IntRange(minimum), **shown, help=help)


def batch_size_option(help: str, *, name: str = "batch_size", default: int | None = None, maximum=None, old=()):
    """``--batch-size N``: images per forward pass (a training step, an inference call, a request)."""
    shown = {"default": default, "show_default": True} if default is not None else {}
    return option("--batch-size", name, old=old, type=click.IntRange(1, maximum), **shown, help=help)


def max_int8_drop_option(help: str, *, name: str = "max_int8_drop", old=()):
    """``--max-int8-drop``: the INT8 budget, top-1 points against FP32 (the eval gate and the guard)."""
    from wrn_deploy import limits

    return option("--max-int8-drop", name, old=old, type=Finite(0, 100), default=limits.INT8_MAX_DROP,
                  show_default=True, help=help)


def min_int8_agreement_option(help: str = "INT8 gate: smallest top-1 agreement with FP32, % (with the drop)."):
    from wrn_deploy import limits

    return click.option("--min-int8-agreement", type=Finite(0, 100), default=limits.INT8_MIN_AGREEMENT,
                        show_default=True, help=help)


def runtime_options(what: str):
    """``--runtime`` (what runs ONNX files) and ``--precision-hint`` (OpenVINO's inference precision)."""
    def decorate(f):
        f = click.option("--precision-hint", type=click.Choice(["f32", "bf16"]), default="f32", show_default=True,
                         help="With --runtime openvino: the precision it computes the float layers in (set "
                              "explicitly: OpenVINO's own default is bf16 on AMX CPUs).")(f)
        return click.option("--runtime", type=click.Choice(["onnxruntime", "openvino"]), default="onnxruntime",
                            show_default=True, help=f"What runs {what}: ONNX Runtime, or OpenVINO (the 'openvino' "
                                                    "extra).")(f)
    return decorate


def check_runtime(runtime: str, precision_hint: str) -> None:
    from wrn_deploy.errors import UserError

    if precision_hint != "f32" and runtime != "openvino":
        raise UserError(f"--precision-hint {precision_hint} applies to --runtime openvino (ONNX Runtime computes "
                        "what the file says)")


def calib_size_option(help: str = "Calibration images."):
    from wrn_deploy import limits

    return click.option("--calib-size", type=click.IntRange(limits.CALIB_MIN_IMAGES), default=limits.CALIB_SIZE,
                        show_default=True, help=help)


def calib_method_option(flag: str, dest: str, help: str):
    """How INT8 activation ranges are chosen (``quant/collect.py``; measured in docs/int8.md); None
    when not given, so that a command can pick its own default."""
    from wrn_deploy import limits

    return click.option(flag, dest, type=click.Choice(limits.CALIB_METHODS), default=None, help=help)


def requests_option(help: str, *, name: str = "requests", default: int = 200, old=()):
    return option("--requests", name, old=old, type=click.IntRange(10), default=default, show_default=True,
                  help=help)


def instances_option(help: str = "Triton model instances."):
    return click.option("--instances", type=click.IntRange(1, 64), default=1, show_default=True, help=help)


def allow_other_data_option(help: str):
    return click.option("--allow-other-data", is_flag=True, help=help)


def allow_unverified_option(help: str = "Load a TensorRT plan that has no manifest, or whose size or sha256 does "
                            "not match it (a plan is executable code: only one you trust)."):
    """``--allow-unverified``: accept, by name, what wrn-deploy cannot verify (plans, repositories)."""
    return click.option("--allow-unverified", is_flag=True, help=help)


def verify_key_option(help: str = "Ed25519 public key the plan must verify with."):
    return click.option("--verify-key", type=click.Path(dir_okay=False), help=help)


def force_option(f=None, *, help: str = "Replace existing outputs (never an input)."):
    """``--force``: replace what a command would otherwise refuse to overwrite; never an input."""
    decorate = click.option("--force", is_flag=True, help=help)
    return decorate(f) if f is not None else decorate


def progress_option(f):
    return click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")(f)
