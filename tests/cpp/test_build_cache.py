"""The C++ builds are reused only while nothing they depend on changed."""

import shutil

from tests.cpp import conftest as C


def test_the_build_key_follows_cpp_sources_deps_and_options(tmp_path, monkeypatch):
    copy = tmp_path / "cpp"
    shutil.copytree(C.CPP, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(C, "CPP", copy)
    deps, opts, targets = ["-DX=1"], ["-DCMAKE_BUILD_TYPE=Release"], ["wrn-classify"]
    key = C._build_key(deps, opts, targets)
    assert C._build_key(deps, opts, targets) == key                      # unchanged: the same build
    (copy / "src" / "main.cpp").write_text((copy / "src" / "main.cpp").read_text() + "\n// changed\n")
    changed = C._build_key(deps, opts, targets)
    assert changed != key                                                  # a source edit rebuilds
    assert C._build_key(["-DX=2"], opts, targets) != changed               # another dependency too
    assert C._build_key(deps, ["-DCMAKE_BUILD_TYPE=Debug"], targets) != changed
    (copy / "src" / "new.hpp").write_text("")                             # so does a new file
    assert C._build_key(deps, opts, targets) != changed
