"""The built wheel works on its own: installed (not editable) into a fresh virtual environment, run
from a folder outside the checkout, it finds its recipes and trains."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import ROOT


def _sh(*cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", ROOT)
    (wheel,) = (tmp_path / "dist").glob("wrn_deploy-*.whl")
    venv = tmp_path / "venv"
    _sh(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    site = Path(_sh(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # The dependencies (torch and the rest, gigabytes) come from this test's environment; a plain
    # path line in a .pth does not run that environment's editable-install hook.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _sh(py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)

    away = tmp_path / "elsewhere"
    away.mkdir()
    where = _sh(py, "-c", "import wrn_deploy, wrn_deploy.models as m; print(wrn_deploy.__file__); "
                "print(list(m.__path__)[0])", cwd=away).stdout.split()
    assert all(p.startswith(str(site)) for p in where), where  # the wheel's copy, not the checkout
    cli = venv / "bin" / "wrn-deploy"
    rows = json.loads(_sh(cli, "models", "--json", cwd=away).stdout)
    assert len(rows) == len(list((ROOT / "models").glob("*.toml"))) >= 9
    _sh(cli, "train", "--arch", "wrn-10-1", "--epochs", "1", "--train-images", "500", "--out", "run",
        "--no-progress", cwd=away)
    card = json.loads((away / "run" / "best.json").read_text())
    assert card["step"]["options"]["recipe_name"] == "wrn-16-1-synthetic" and card["step"]["options"]["epochs"] == 1
