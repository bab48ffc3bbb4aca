"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""

import click


class UserError(click.ClickException):
    """A mistake in what the user asked for (bad name, missing file, mismatched model)."""

    exit_code = 2
