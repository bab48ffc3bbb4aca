"""The layer rule of docs/architecture.md is the import-linter contract in pyproject.toml: the
contract holds (lint-imports), and the doc's table names the contract's layers in its order."""

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def _contract_layers() -> list:
    """The layers contract's layers, lowest first, each a set of module names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [set(re.split(r"\s*[|:]\s*", layer.strip())) for layer in reversed(contract["layers"])]


def _doc_layers() -> list:
    """The rows of the table under "## Layers", top first, each a set of module names."""
    section = (ROOT / "docs" / "architecture.md").read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("|")]
    assert rows[0][0].strip() == "layer" and set(rows[1][0]) <= {"-"}, "the table's header moved"
    return [{name.removesuffix(".py").removesuffix("/") for name in re.findall(r"`([^`]+)`", cells[1])}
            for cells in rows[2:]]


def test_the_doc_table_names_the_contract_layers_in_order():
    assert _doc_layers() == _contract_layers()


def test_the_import_contracts_hold():
    pytest.importorskip("importlinter", reason="import-linter is not installed (pip install -e '.[dev]')")
    code = ("import sys\nfrom importlinter.cli import lint_imports\n"
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
