import json
import shutil

import pytest

from tests.conftest import run_cli

# Small enough for CI: a WRN-10-1 trained one epoch, 500 test images, 64 calibration images.
FAST = ("--arch", "wrn-10-1", "--epochs", "1", "--eval-images", "500", "--calib-size", "64",
        "--bench-requests", "10", "--no-progress")


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """A whole pipeline on the synthetic data without Triton: (folder, the CLI's output)."""
    out = tmp_path_factory.mktemp("pipeline") / "run"
    proc = run_cli("pipeline", *FAST, "--no-triton", "-o", out)
    return out, proc.stdout


@pytest.fixture
def copy_of_run(first_run, tmp_path):
    """A copy of the first run to change (the pipeline folder can move: records name files relative to it)."""
    dst = tmp_path / "moved"
    shutil.copytree(first_run[0], dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def statuses(stdout: str) -> dict:
    """{step: status} from the pipeline's per-step lines, e.g. '[ cached] export-fp32 (0.0 s)'."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("[") and "] " in line:
            status, rest = line[1:].split("] ", 1)
            out[rest.split(" ", 1)[0].rstrip(":")] = status.strip()
    return out


def report(folder) -> dict:
    return json.loads((folder / "report.json").read_text())
