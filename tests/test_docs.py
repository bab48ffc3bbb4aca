"""Every report in the docs is generated: each committed report.md is what `wrn-deploy report` draws
from its report.json, and each copy embedded in README.md or docs/*.md is that file."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

REPORTS = sorted((ROOT / "docs" / "reports").glob("*/report.json"))


@pytest.mark.parametrize("src", REPORTS, ids=lambda p: p.parent.name)
def test_committed_report_is_what_report_draws_from_its_json(src, tmp_path):
    shutil.copy(src, tmp_path / "report.json")
    run_cli("report", tmp_path)
    assert (tmp_path / "report.md").read_text() == (src.parent / "report.md").read_text()
    assert (src.parent / "report.png").is_file()


def test_embedded_reports_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "embed_reports.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_there_are_reports_to_check():
    assert len(REPORTS) >= 1 and Path(ROOT / "README.md").read_text().count("<!-- report:") >= 1


# The front door tells the truth: headings, and every documented command and option exists.

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`]+)`")
STOP = {"&&", "||", ";", ">", ">>", "2>", "&", "#"}


def _headings(text: str) -> list:
    """(line index, level) of every Markdown heading outside code fences."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#{1,6}) ", line)):
            out.append((i, len(m.group(1))))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_one_top_level_heading(doc):
    assert [i for i, level in _headings(doc.read_text()) if level == 1] == [0]


@pytest.mark.parametrize("doc", [d for d in DOCS if "<!-- report:" in d.read_text()], ids=lambda p: p.name)
def test_embedded_reports_nest_under_their_section(doc):
    lines = doc.read_text().splitlines()
    heads = _headings(doc.read_text())
    starts = [i for i, line in enumerate(lines) if line.startswith("<!-- report:")]
    ends = [i for i, line in enumerate(lines) if line.startswith("<!-- /report -->")]
    for start, end in zip(starts, ends):
        section = max(level for i, level in heads if i < start)
        inside = [level for i, level in heads if start < i < end]
        assert inside and min(inside) == section + 1, (doc.name, section, inside)


def _snippets(text: str) -> list:
    """Command lines in the doc: each line of a code block (a trailing backslash continues it) and
    each inline code span."""
    out = []
    for block in FENCE.findall(text):
        out += block.replace("\\\n", " ").splitlines()
    prose = FENCE.sub("", text)
    out += [s for s in INLINE.findall(prose) if "\n\n" not in s]
    return [" ".join(s.split()) for s in out]


def _usages(snippet: str) -> list:
    """(group options, command, options) for each ``wrn-deploy COMMAND ...`` (or ``-m wrn_deploy``)
    in a snippet, and for a snippet that starts with a command and an option (``build --sign``)."""
    from wrn_deploy.cli import cli

    tokens = snippet.lstrip("$ ").split()
    starts = [i + 1 for i, t in enumerate(tokens)
              if t == "wrn-deploy" or (t == "wrn_deploy" and i and tokens[i - 1] == "-m")]
    if len(tokens) > 1 and tokens[0] in cli.commands and tokens[1].startswith("--"):
        starts.insert(0, 0)
    found = []
    for start in starts:
        group, rest = [], tokens[start:]
        while rest and rest[0].startswith("-"):
            group.append(rest.pop(0))
        if not rest or not re.fullmatch(r"[a-z][a-z0-9-]*", rest[0]):
            found.append((group, None, []))  # `wrn-deploy --help`, `wrn-deploy COMMAND --help`
            continue
        command, options = rest[0], []
        for i, t in enumerate(rest[1:], 1):
            if t in STOP or (t == "|" and not (i + 1 < len(rest) and rest[i + 1].startswith("-"))):
                break
            for part in t.strip("[](),;:.`'\"").split("/"):
                m = re.fullmatch(r"(-{1,2}[a-zA-Z][\w-]*)(=.*)?", part)
                if m:
                    options.append(m.group(1))
        found.append((group, command, options))
    return found


def _documented():
    for doc in DOCS:
        for snippet in _snippets(doc.read_text()):
            for usage in _usages(snippet):
                yield doc.name, snippet, usage


def test_docs_show_commands():
    usages = list(_documented())
    assert len(usages) >= 30
    assert {u[2][1] for u in usages} >= {"train", "export", "quantize", "build", "eval", "triton", "serve", "bench",
                                          "pipeline", "report", "models", "keygen"}


def test_every_documented_command_and_option_exists():
    """Each ``wrn-deploy COMMAND ... --option`` in README.md and docs/*.md names a command that exists
    and options that it accepts (old spellings included: those still work), and uses the current
    spelling (docs/cli.md lists the old ones)."""
    import click

    from wrn_deploy.cli import cli

    def spellings(cmd, name):
        group = click.Context(cli, info_name="wrn-deploy", **cli.context_settings)
        ctx = click.Context(cmd, info_name=name, parent=group)
        params = [p for p in cmd.get_params(ctx) if isinstance(p, click.Option)]
        every = {o for p in params for o in (*p.opts, *p.secondary_opts)}
        old = {o for p in params for o in getattr(p, "old", ())}
        return every, every - old

    wrong = []
    for doc, snippet, (group, command, options) in _documented():
        every, _ = spellings(cli, "wrn-deploy")
        wrong += [f"{doc}: `{snippet}`: wrn-deploy has no {o}" for o in group if o not in every | {"--debug"}]
        if command is None:
            continue
        if command not in cli.commands:
            wrong.append(f"{doc}: `{snippet}`: no command {command!r}")
            continue
        every, current = spellings(cli.commands[command], command)
        for o in options:
            if o not in every:
                wrong.append(f"{doc}: `{snippet}`: {command} has no {o}")
            elif o not in current:
                wrong.append(f"{doc}: `{snippet}`: {o} is {command}'s old spelling; docs/cli.md gives the new one")
    assert not wrong, "\n".join(wrong)
