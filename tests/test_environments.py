"""One ONNX Runtime in every environment: onnxruntime and onnxruntime-gpu install the same Python
module, so no documented install (README's commands, .ci/run, the Dockerfile) and no extra may bring
both. The environments are resolved from pyproject.toml and the installed packages' own requirement
metadata (the fast check, every run) and, with -m slow, by pip's resolver against the index."""

import json
import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, run_cli

RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requires(name: str, extras: set) -> list:
    """The requirements of installed distribution ``name`` that apply with ``extras``; a package not
    installed here (onnxruntime-gpu, tensorrt) counts as itself only."""
    try:
        reqs = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            out.append(req)
    return out


def resolved(extras: set) -> set:
    """Every distribution name that ``pip install '.[extras]'`` brings, as far as metadata tells."""
    project = _pyproject()
    todo = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        todo += [Requirement(r) for r in project["optional-dependencies"][extra]]
    seen: set = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        todo += _requires(name, set(req.extras))
    return {name for name, _ in seen}


def documented_installs() -> dict:
    """Where the project tells someone to install it -> the extras it names."""
    found = {}
    for path in ("README.md", ".ci/run", "Dockerfile"):
        for i, m in enumerate(re.finditer(r"""pip install[^\n]*?['"]?\.\[([a-z,]+)\]""", (ROOT / path).read_text())):
            found[f"{path} #{i + 1}"] = set(m.group(1).split(","))
    return found


def test_every_documented_install_resolves_to_exactly_one_onnx_runtime():
    installs = documented_installs()
    assert set(installs) >= {"README.md #1", "README.md #2", ".ci/run #1", "Dockerfile #1"}, installs
    for where, extras in installs.items():
        assert len(resolved(extras) & RUNTIMES) == 1, f"{where}: .[{','.join(sorted(extras))}]"


# ids not spelled like the gpu/trt markers, which conftest's skips would take for them
@pytest.mark.parametrize("extra", sorted(_pyproject()["optional-dependencies"]), ids=lambda e: f"extra-{e}")
def test_no_extra_brings_both_runtimes(extra):
    assert len(resolved({extra}) & RUNTIMES) <= 1
    assert not resolved(set()) & RUNTIMES  # the core chooses none: the extra does


def test_dockerfile_installs_the_gpu_runtime_once():
    text = "\n".join(ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#"))
    installs = re.findall(r"pip install ([^\n\\&]+)", text)
    assert len(installs) == 1, installs  # the project, with its extras: no second pip install
    extras = set(re.search(r"\.\[([a-z,]+)\]", installs[0]).group(1).split(","))
    assert "gpu" in extras and "cpu" not in extras
    assert not re.search(r"\bonnxruntime(-gpu)?[=<> ]", text)  # no runtime installed by name


def test_a_step_without_onnx_runtime_names_the_extra(kit, tmp_path):
    code = ("import sys; sys.modules['onnxruntime'] = None\nfrom wrn_deploy.cli import main\n"
            f"main(['triton', {str(kit / 'm.onnx')!r}, '-o', {str(tmp_path / 'repo')!r}, '--no-check-load'])")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 2 and "wrn-deploy[cpu]" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "repo" / "m").exists()
    assert run_cli("--help").returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("extras", ["cpu,dev,serve,openvino", "gpu,serve,dev"])
def test_pip_resolves_one_runtime(extras, tmp_path):
    """pip's own resolver, against the package index (minutes; skipped offline). The trt extra is
    left out: PyPI's tensorrt is a stub that downloads from NVIDIA's index at install time."""
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", report, f"{ROOT}[{extras}]", "torch==2.14.1", "torchvision==0.29.1"],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"pip could not resolve here: {proc.stderr.strip().splitlines()[-1:]}")
    names = {canonicalize_name(i["metadata"]["name"]) for i in json.loads(report.read_text())["install"]}
    assert len(names & RUNTIMES) == 1, names & RUNTIMES
