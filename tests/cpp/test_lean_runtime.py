"""The C++ TensorRT backend against the TensorRT lean runtime that NVIDIA publishes on PyPI
(tensorrt-lean-cu13-libs: libnvinfer_lean.so, the runtime API only): FindTensorRT finds the library
in a pip-installed wheel, and wrn-classify builds, links and starts with it.

The wheels ship no headers, so the build needs NvInferRuntime.h from elsewhere: TensorRT_ROOT (a
folder with include/, e.g. a TensorRT tar or the public NVIDIA/TensorRT repository's include/) or a
system install. Without them, or without PyPI, the build test skips and says which. The wheel and
the build are cached (~/.cache/wrn-deploy), so a second run costs a configure check only.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cpp import conftest as C

WHEEL = "tensorrt-lean-cu13-libs"
CACHE = Path.home() / ".cache" / "wrn-deploy" / "tensorrt-lean"


def _headers() -> Path:
    for root in (os.environ.get("TensorRT_ROOT"), "/usr", "/usr/local/tensorrt"):
        for sub in ("include", "include/x86_64-linux-gnu"):
            if root and (Path(root) / sub / "NvInferRuntime.h").is_file():
                return Path(root) / sub
    pytest.skip("no TensorRT headers here (NvInferRuntime.h; the pip wheels ship none): set TensorRT_ROOT to a "
                "folder with include/")


def _version(include: Path) -> str:
    text = (include / "NvInferVersion.h").read_text()
    major, minor = (re.search(rf"#define TRT_{part}(?:_ENTERPRISE)? (\d+)", text).group(1)
                    for part in ("MAJOR", "MINOR"))
    return f"{major}.{minor}"


def _lean_wheel(version: str) -> Path:
    """The lean runtime wheel of the headers' version, pip-installed into a cached scratch folder."""
    target = CACHE / version
    if not list(target.glob("tensorrt_lean_libs/libnvinfer_lean.so*")):
        shutil.rmtree(target, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                               str(target), f"{WHEEL}=={version}.*"], check=False, capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            pytest.skip(f"{WHEEL} {version}.* cannot be installed here: {proc.stderr.strip().splitlines()[-1:]}")
    return target


def test_wrn_classify_builds_and_links_against_the_pip_lean_runtime(cpp_deps, monkeypatch):
    include = _headers()
    site = _lean_wheel(_version(include))
    json_only = [d for d in cpp_deps if d.startswith("-DWRN_JSON_INCLUDE_DIR=")]  # the TensorRT backend alone
    monkeypatch.setenv("PYTHONPATH", str(site))  # how FindTensorRT's python finds the wheel's folder
    build = C._Build("lean", json_only, [f"-DTensorRT_ROOT={include.parent}", f"-DPython3_EXECUTABLE={sys.executable}",
                                         "-DWRN_REQUIRE_TENSORRT=ON", "-DCMAKE_BUILD_TYPE=Release",
                                         f"-DWRN_LEAN_SITE={site}"],  # keys the cached build to this wheel
                     ["wrn-classify"])
    build.thread.join()
    kind, out = build.outcome
    assert kind == "ok", out
    lib = site / "tensorrt_lean_libs"
    assert re.search(rf"TensorRT: header {re.escape(str(include))}/NvInferRuntime.h; library {re.escape(str(lib))}"
                     r"/libnvinfer_lean\.so\.\d+ \(lean runtime", out), out
    assert "wrn-classify backends: tensorrt" in out
    exe = build.folder / "wrn-classify"
    linked = subprocess.run(["ldd", str(exe)], check=False, capture_output=True, text=True).stdout
    assert re.search(rf"libnvinfer_lean\.so\.\d+ => {re.escape(str(lib))}", linked), linked
    started = subprocess.run([str(exe), "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0 and "usage: wrn-classify" in started.stdout


def test_find_tensorrt_says_what_it_did_not_find(tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(probe NONE)\n"
        f"list(APPEND CMAKE_MODULE_PATH {C.CPP.as_posix()}/cmake)\nfind_package(TensorRT QUIET)\n"
        'message(STATUS "why: ${TensorRT_WHY_NOT}")\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(["cmake", "-S", str(tmp_path / "src"), "-B", str(tmp_path / "b"), f"-DTensorRT_ROOT={empty}",
                           f"-DPython3_EXECUTABLE={sys.executable}", "-DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY",
                           f"-DCMAKE_FIND_ROOT_PATH={empty}"],
                          check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "TensorRT: header NvInferRuntime.h not found; no auto runtime library" in proc.stdout, proc.stdout
    assert f"TensorRT_ROOT={empty}" in proc.stdout  # it says where it looked, TensorRT_ROOT included
    assert "why: neither NvInferRuntime.h nor a TensorRT runtime library was found" in proc.stdout
