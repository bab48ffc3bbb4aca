#!/usr/bin/env python3
"""Copy generated pipeline reports into the docs that show them, so no table in the docs is typed.

A doc marks the place with ``<!-- report:PATH -->`` ... ``<!-- /report -->`` (PATH from the
repository root); everything between the markers is replaced by PATH's content, every heading
demoted two levels (the report's title becomes a third-level heading, its sections fourth-level,
so the doc keeps its one top-level heading and the report nests under the doc's section) and its
image links made relative to the doc.

    python scripts/embed_reports.py            # rewrite README.md and docs/*.md
    python scripts/embed_reports.py --check    # exit 1 if any embed is stale (the tests run this)
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- report:(?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- /report -->)", re.DOTALL)
DEMOTE = 2  # heading levels added to an embedded report's headings


def demote(text: str, levels: int = DEMOTE) -> str:
    """Every Markdown heading outside code fences ``levels`` deeper (at most level 6)."""
    out, fenced = [], False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{1,6}) ", line)
        out.append("#" * min(6, len(m.group(1)) + levels) + line[len(m.group(1)):] if m else line)
    return "".join(out)


def _body(report: Path, doc: Path) -> str:
    text = demote(report.read_text())
    rel = Path(os.path.relpath(report.parent, doc.parent))
    return re.sub(r"\]\((report\.png)\)", lambda m: f"]({(rel / m.group(1)).as_posix()})", text)


def embedded(doc: Path) -> str:
    """``doc``'s text with every report block filled from its file."""
    def fill(m):
        return m.group(1) + _body(ROOT / m.group("path"), doc) + m.group(4)
    return BLOCK.sub(fill, doc.read_text())


def docs() -> list:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main() -> int:
    stale = [d for d in docs() if embedded(d) != d.read_text()]
    if "--check" in sys.argv:
        for d in stale:
            print(f"stale report embed in {d.relative_to(ROOT)}: run python scripts/embed_reports.py")
        return 1 if stale else 0
    for d in stale:
        d.write_text(embedded(d))
        print(f"updated {d.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
