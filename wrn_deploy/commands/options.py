"""Options that several commands share, spelled the same everywhere."""

import math

import click

from wrn_deploy.data.table import NAMES


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


def force_option(f):
    return click.option("--force", is_flag=True, help="Replace existing outputs (never an input).")(f)


def progress_option(f):
    return click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")(f)
