"""cpp/tools/fetch_deps.py: the README's build commands (an initial-cache file for cmake -C) and
its refusal of a package whose checksum does not match the pin."""

import subprocess
import sys

import pytest

from tests.cpp.conftest import CPP


def test_cache_file_configures_the_project(cpp_deps, tmp_path):
    cache = tmp_path / "deps dir" / "cpp-deps.cmake"  # a space in the path is fine
    proc = subprocess.run([sys.executable, str(CPP / "tools" / "fetch_deps.py"), "--cache", str(cache)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = cache.read_text()
    for var in ("WRN_ORT_INCLUDE_DIR", "WRN_ORT_LIBRARY", "WRN_JSON_INCLUDE_DIR"):
        assert f"set({var} " in text
    cfg = subprocess.run(["cmake", "-C", str(cache), "-S", str(CPP), "-B", str(tmp_path / "build")],
                         capture_output=True, text=True, timeout=300)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    assert "wrn-classify backends: onnxruntime" in cfg.stdout
    assert "TensorRT backend: skipped" in cfg.stdout or "onnxruntime;tensorrt" in cfg.stdout
    # OpenVINO is optional: given (and built) exactly where its wheel is installed
    import importlib.util

    has_openvino = importlib.util.find_spec("openvino") is not None
    assert ("set(OpenVINO_DIR " in text) == has_openvino
    if has_openvino:  # (a system-wide OpenVINO could build it without the wheel)
        assert "wrn-classify backends: onnxruntime;openvino" in cfg.stdout, cfg.stdout


def test_a_package_that_changed_is_refused(cpp_deps, tmp_path, monkeypatch):
    sys.path.insert(0, str(CPP / "tools"))
    try:
        import fetch_deps
    finally:
        sys.path.pop(0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rel, _ = fetch_deps.DEBS["nlohmann_json"]
    monkeypatch.setitem(fetch_deps.DEBS, "nlohmann_json", (rel, "0" * 64))
    try:
        fetch_deps.headers("nlohmann_json")
    except fetch_deps.Missing as e:
        if "cannot download" in str(e):
            pytest.skip(f"the Debian mirror is unreachable: {e}")
        assert "expected " + "0" * 64 in str(e), str(e)
    else:
        raise AssertionError("a package with another checksum was accepted")
    assert not any(tmp_path.rglob("json.hpp"))  # nothing unpacked from it
