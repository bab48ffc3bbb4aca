"""Every report in the docs is generated: each committed report.md is what `wrn-deploy report` draws
from its report.json, and each copy embedded in README.md or docs/*.md is that file."""

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
