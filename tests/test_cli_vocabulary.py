"""One name per setting: docs/cli.md's option table is the command line's vocabulary, checked against the
commands themselves (click introspection, no subprocess). Renamed options keep their old spelling as a
hidden alias that parses to the same parameter."""

import re

import click
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from wrn_deploy.cli import cli
from wrn_deploy.commands.options import Device, Renamed

DOC = ROOT / "docs" / "cli.md"
COMMANDS = sorted(cli.commands)
OPTION = re.compile(r"(?<![\w-])(-{1,2}[a-zA-Z][\w-]*)")


def _table(header: list) -> list:
    """The rows (lists of cells) of docs/cli.md's table whose header row is ``header``."""
    lines = DOC.read_text().splitlines()

    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    start = next((i for i, line in enumerate(lines) if line.startswith("|") and cells(line) == header), None)
    assert start is not None, f"docs/cli.md has no table headed {' | '.join(header)}"
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    assert all(len(r) == len(header) for r in rows), "a row with more or fewer cells than the header"
    return rows


def _options_in(cell: str) -> list:
    return re.findall(r"`(-{1,2}[a-zA-Z][\w-]*)`", cell)


def _commands_in(cell: str) -> list:
    return re.findall(r"`([a-z][a-z0-9-]*)`", cell)


def _ctx(name: str) -> click.Context:
    """A context for command NAME as ``wrn-deploy NAME`` makes it (the group's settings inherited)."""
    group = click.Context(cli, info_name="wrn-deploy", **cli.context_settings)
    return click.Context(cli.commands[name], info_name=name, parent=group)


def _params(name: str) -> list:
    """NAME's options, its help option aside."""
    ctx = _ctx(name)
    help_option = ctx.command.get_help_option(ctx)
    return [p for p in ctx.command.get_params(ctx) if isinstance(p, click.Option) and p is not help_option]


def shown(name: str) -> set:
    """Every option spelling that ``wrn-deploy NAME --help`` shows (the help option aside)."""
    ctx = _ctx(name)
    out = set()
    for p in _params(name):
        record = p.get_help_record(ctx)
        if record:
            out |= set(OPTION.findall(record[0]))
    return out


ROWS = _table(["option", "meaning", "commands"])
OLD = _table(["old spelling", "now", "commands"])


def test_the_tables_are_there():
    assert len(ROWS) > 50 and len(OLD) >= 5
    assert all(_options_in(r[0]) and _commands_in(r[2]) and r[1] for r in ROWS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_in_help_is_in_the_table_with_its_command(command):
    listed = {o for row in ROWS if command in _commands_in(row[2]) for o in _options_in(row[0])}
    missing = shown(command) - listed
    assert not missing, f"docs/cli.md lists no row for `{command}` with {sorted(missing)}"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: " ".join(_options_in(r[0])))
def test_every_row_exists_in_the_commands_it_lists(row):
    for command in _commands_in(row[2]):
        assert command in cli.commands, f"docs/cli.md lists `{command}`, which is not a command"
        absent = set(_options_in(row[0])) - shown(command)
        assert not absent, f"`{command}` shows no {sorted(absent)} in its --help"


def test_each_option_has_one_row():
    seen: dict = {}
    for row in ROWS:
        for o in _options_in(row[0]):
            assert o not in seen, f"{o} has two rows in docs/cli.md: one setting, one row"
            seen[o] = row


def test_one_option_spelled_alike_parses_alike_in_every_command():
    """An option that several commands take is the same kind of value in each (one parser)."""
    kinds: dict = {}
    for command in COMMANDS:
        for p in _params(command):
            for o in p.opts:
                kind = (type(p.type).__name__, p.is_flag)
                kinds.setdefault(o, {})[command] = kind
    for option, by_command in kinds.items():
        assert len(set(by_command.values())) == 1, f"{option} parses differently: {by_command}"


def test_device_has_one_parser():
    devices = [p for c in COMMANDS for p in _params(c) if "--device" in p.opts]
    assert len(devices) >= 3 and all(isinstance(p.type, Device) for p in devices)
    for good in ("auto", "cpu", "cuda", "cuda:1"):
        assert Device().convert(good, None, None) == good
    with pytest.raises(click.BadParameter, match="use auto, cpu, cuda or cuda:N"):
        Device().convert("tpu", None, None)


@pytest.mark.parametrize("row", OLD, ids=lambda r: f"{r[0]}->{r[1]}")
def test_old_spellings_still_parse_and_are_hidden(row):
    (old,), (new,) = _options_in(row[0]), _options_in(row[1])
    for command in _commands_in(row[2]):
        cmd = cli.commands[command]
        (param,) = [p for p in _params(command) if old in p.opts]
        assert isinstance(param, Renamed) and old in param.old and new in param.opts
        assert old not in shown(command) and new in shown(command)
        for spelling in (old, new):  # the parser gives the value to the same parameter either way
            ctx = click.Context(cmd, info_name=command)
            opts, _, _ = cmd.make_parser(ctx).parse_args([spelling, "7"])
            assert param.consume_value(ctx, opts)[0] == "7"


def test_every_old_spelling_is_listed():
    listed = {(o, c) for row in OLD for o in _options_in(row[0]) for c in _commands_in(row[2])}
    hidden = {(o, c) for c in COMMANDS for p in _params(c) if isinstance(p, Renamed) for o in p.old}
    assert hidden == listed


def test_both_spellings_at_once_is_one_clear_error():
    cmd = cli.commands["eval"]
    with pytest.raises(click.UsageError, match="--images and --limit are one option"):
        cmd.make_context("eval", ["--onnx", "m.onnx", "--images", "5", "--limit", "6"])


def test_an_error_names_the_spelling_typed():
    cmd = cli.commands["quantize"]
    for spelling in ("--max-drop", "--max-int8-drop"):
        with pytest.raises(click.BadParameter) as e:
            cmd.make_context("quantize", ["m.onnx", "-o", "q.onnx", spelling, "101"])
        assert e.value.format_message().startswith(f"Invalid value for '{spelling}'")


def test_old_and_new_spellings_give_the_same_parameters():
    def params(command, args):
        return cli.commands[command].make_context(command, args).params

    assert params("eval", ["--onnx", "m", "--limit", "5", "--batch", "7", "--report", "r"]) == \
        params("eval", ["--onnx", "m", "--images", "5", "--batch-size", "7", "-o", "r"])
    assert params("pipeline", ["--out", "o", "--eval-images", "4", "--bench-requests", "11"]) == \
        params("pipeline", ["-o", "o", "--images", "4", "--requests", "11"])
    assert params("export", ["c", "-o", "m.onnx", "--batch", "4", "--verify-images", "9"]) == \
        params("export", ["c", "--output", "m.onnx", "--static-batch", "4", "--images", "9"])
    assert params("triton", ["a", "--repo", "r"]) == params("triton", ["a", "-o", "r"])
    assert params("train", ["--out", "r"]) == params("train", ["--output", "r"])
    assert params("bench", ["a", "--batch", "3"]) == params("bench", ["a", "--batch-size", "3"])
    assert params("quantize", ["m", "-o", "q", "--max-drop", "1"]) == \
        params("quantize", ["m", "-o", "q", "--max-int8-drop", "1"])


def test_group_help_lists_every_command():
    text = cli.help
    for command in COMMANDS:
        assert re.search(rf"(^|;)\s*{command}\s+->", text, re.MULTILINE), f"wrn-deploy --help omits {command}"
    out = CliRunner().invoke(cli, ["--help"]).output
    summary = out.split("Options:")[0]
    assert all(re.search(rf"\b{c}\s+->", summary) for c in COMMANDS)
