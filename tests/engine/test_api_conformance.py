"""Every TensorRT name wrn-deploy uses exists in the real TensorRT 10.x and 11.x Python bindings.

PyPI's ``tensorrt-cu12-bindings`` (10.x) and ``tensorrt-cu13-bindings`` (11.x) wheels are small and
download here, but cannot be imported without NVIDIA's libraries; their compiled module still holds
every Python-visible name as a string, which is what these tests read.
"""

import ast
import bisect
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wrn_deploy.engine.trt_api import USED

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "wrn-deploy" / "trt-bindings"
WHEELS = {"10.x": "tensorrt-cu12-bindings<11", "11.x": "tensorrt-cu13-bindings>=11,<12"}
TRT_FILES = ["wrn_deploy/engine/onnx_to_plan.py", "wrn_deploy/engine/trt_api.py", "wrn_deploy/runners/trt_runner.py"]


class Names:
    """The identifiers of a bindings wheel. The linker stores a string that ends another one only once
    ("INPUT" inside "CONDITIONAL_INPUT"), so a name is present when it is any token's tail: looked up
    by bisecting the reversed tokens, for the names asked about only (materialising every tail of
    every token took minutes)."""

    def __init__(self, tokens: set):
        self._reversed = sorted(t[::-1] for t in tokens)

    def __contains__(self, name: str) -> bool:
        rev = name[::-1]
        i = bisect.bisect_left(self._reversed, rev)
        return i < len(self._reversed) and self._reversed[i].startswith(rev)

    def lacking(self, names) -> set:
        return {n for n in names if n not in self}


def _names(requirement: str, folder: Path) -> Names:
    if not list(folder.glob("*.whl")):
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-d", str(folder),
                               requirement], capture_output=True, text=True, timeout=300)
        if proc.returncode:
            pytest.skip(f"cannot download {requirement} from PyPI: {proc.stderr.strip().splitlines()[-1:]}")
    (wheel,) = folder.glob("*.whl")
    tokens = set()
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.endswith(".so") or member.endswith(".py"):
                tokens |= {m.decode() for m in re.findall(rb"[A-Za-z_][A-Za-z0-9_]*", z.read(member))}
    return Names(tokens)


@pytest.fixture(scope="session")
def bindings() -> dict:
    return {v: _names(req, CACHE / v) for v, req in WHEELS.items()}


def _gone(bindings, names) -> set:
    """Of ``names``, those the 10.x bindings have and the 11.x ones do not."""
    return {n for n in names if n in bindings["10.x"] and n not in bindings["11.x"]}


def test_every_used_name_exists_in_tensorrt_10_and_11(bindings):
    for version, names in bindings.items():
        missing = sorted(names.lacking(USED))
        assert not missing, f"TensorRT {version} bindings lack {missing}"


def test_removed_in_11_names_are_known_to_the_check(bindings):
    """The check can see removals: these 10.x names are gone from 11.x."""
    assert _gone(bindings, {"int8_calibrator", "EXPLICIT_BATCH", "create_network"}) == {"int8_calibrator",
                                                                                        "EXPLICIT_BATCH"}


def _attributes(path: Path) -> set:
    return {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}


def test_code_uses_no_name_that_tensorrt_11_removed(bindings):
    for f in TRT_FILES:
        bad = _gone(bindings, _attributes(ROOT / f))
        assert not bad, f"{f} uses names removed in TensorRT 11: {sorted(bad)}"


def test_every_trt_attribute_in_the_code_is_declared():
    """``trt.X`` chains in the TensorRT modules are all listed in trt_api.USED (which is checked above)."""
    for f in TRT_FILES:
        for node in ast.walk(ast.parse((ROOT / f).read_text())):
            if isinstance(node, ast.Attribute):
                chain, base = [], node
                while isinstance(base, ast.Attribute):
                    chain.append(base.attr)
                    base = base.value
                if isinstance(base, ast.Name) and base.id == "trt":
                    names = {c for c in chain if not c.startswith("__") or c == "__version__"}
                    assert names <= set(USED), f"{f}: trt.{'.'.join(reversed(chain))} not in USED"


def test_the_stand_in_invents_no_api(bindings):
    from tests.engine import fake_tensorrt

    tree = ast.parse(Path(fake_tensorrt.__file__).read_text())
    defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    methods = {m.name for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body
               if isinstance(m, ast.FunctionDef) and not m.name.startswith("_")}
    public = {n for n in defined | methods if not n.startswith("_")} - {"as_module"}
    # Class names of objects the real module returns (IBuilderConfig, ...) are in the bindings too.
    assert bindings["11.x"].lacking(public) == set()
