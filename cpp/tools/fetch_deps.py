#!/usr/bin/env python3
"""Headers the C++ build needs and no PyPI wheel ships, fetched from Debian and cached.

- ONNX Runtime's C/C++ API headers: Debian's ``libonnxruntime-dev`` (1.21, from trixie). The
  library itself comes from the ``onnxruntime`` wheel already installed for the Python side
  (``libonnxruntime.so.1.N``); ONNX Runtime's C API is versioned (``OrtGetApiBase()->GetApi(21)``),
  so 1.21 headers work with a newer library.
- nlohmann/json (``nlohmann-json3-dev``), unless the system already has it.
- OpenVINO, optional: where the ``openvino`` wheel is installed, its CMake config folder
  (``openvino/cmake``: OpenVINOConfig.cmake, with the headers and libraries beside it) as
  ``OpenVINO_DIR``, which builds the OpenVINO backend too. Nothing is fetched for it.

Each .deb is pinned by sha256, fetched over HTTP from a Debian mirror (``WRN_DEBIAN_MIRROR``,
default http://deb.debian.org/debian), unpacked with the standard library (ar + tar), and only its
``usr/include`` tree is kept, in ``$XDG_CACHE_HOME/wrn-deploy/cpp-deps`` (``~/.cache`` by default).
Nothing is installed and nothing lands in the repository.

Prints the CMake arguments, one per line (``--json`` prints them as a JSON object), or writes them
as a CMake initial-cache file with ``--cache FILE`` (no shell word splitting, spaces in paths are fine):

    python cpp/tools/fetch_deps.py --cache build/cpp-deps.cmake
    cmake -C build/cpp-deps.cmake -S cpp -B build/cpp

Exit status 3 with one line on stderr when something cannot be fetched or found.
"""

import argparse
import hashlib
import importlib.util
import io
import json
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

DEBS = {
    "onnxruntime": ("pool/main/o/onnxruntime/libonnxruntime-dev_1.21.0%2Bdfsg-1_amd64.deb",
                    "14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08"),
    "nlohmann_json": ("pool/main/n/nlohmann-json3/nlohmann-json3-dev_3.11.2-2_all.deb",
                      "ec57940def6b6186c30be0e0ee81d1e58f86d11a54a145b28686a1e3e4aae801"),
}
MAX_DEB = 16 << 20  # both are well under 1 MB; refuse anything huge


class Missing(Exception):
    pass


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wrn-deploy" / "cpp-deps"


def _ar_members(data: bytes):
    """(name, bytes) of each member of a Debian ar archive."""
    if not data.startswith(b"!<arch>\n"):
        raise Missing("not an ar archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = pos + 60
        yield name, data[start:start + size]
        pos = start + size + (size & 1)


def _download(rel: str, sha256: str) -> bytes:
    mirror = os.environ.get("WRN_DEBIAN_MIRROR", "http://deb.debian.org/debian").rstrip("/")
    url = f"{mirror}/{rel}"
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read(MAX_DEB + 1)
    except OSError as e:
        raise Missing(f"cannot download {url} ({e})") from None
    if len(data) > MAX_DEB:
        raise Missing(f"{url} is larger than {MAX_DEB} bytes; refusing it")
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise Missing(f"{url} has sha256 {got}, expected {sha256} (the pinned package changed or was replaced)")
    return data


def headers(name: str) -> Path:
    """The include directory of a pinned .deb, downloaded and unpacked once."""
    rel, sha256 = DEBS[name]
    dest = cache_root() / f"{name}-{sha256[:12]}"
    done = dest / ".complete"
    if done.is_file():
        return dest / "usr" / "include"
    deb = _download(rel, sha256)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    found = False
    for member, blob in _ar_members(deb):
        if member.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
                keep = [m for m in tar.getmembers()
                        if m.name.lstrip("./").startswith("usr/include/") and (m.isfile() or m.isdir())]
                tar.extractall(tmp, members=keep, filter="data")
            found = True
    if not found:
        raise Missing(f"{rel} has no data.tar member")
    (tmp / ".complete").write_text(sha256 + "\n")
    try:
        tmp.rename(dest)
    except OSError:  # another process finished first; its copy is equal
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return dest / "usr" / "include"


def ort_library() -> Path:
    """libonnxruntime.so.1.N from the installed onnxruntime wheel (found without importing it)."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise Missing("the onnxruntime Python package is not installed (pip install onnxruntime)")
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    libs = sorted(capi.glob("libonnxruntime.so.1*"))
    if not libs:
        raise Missing(f"no libonnxruntime.so.1.* in {capi}")
    return libs[-1]


def openvino_dir() -> Path | None:
    """The openvino wheel's CMake config folder (found without importing it), or None."""
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        return None
    cmake = Path(next(iter(spec.submodule_search_locations))) / "cmake"
    return cmake if (cmake / "OpenVINOConfig.cmake").is_file() else None


def system_json() -> Path | None:
    for d in ("/usr/include", "/usr/local/include"):
        if (Path(d) / "nlohmann" / "json.hpp").is_file():
            return Path(d)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the CMake cache variables as JSON")
    ap.add_argument("--cache", metavar="FILE", help="write them as a CMake initial-cache file (cmake -C FILE)")
    args = ap.parse_args()
    try:
        ort_inc = headers("onnxruntime") / "onnxruntime"
        json_inc = system_json() or headers("nlohmann_json")
        out = {"WRN_ORT_INCLUDE_DIR": str(ort_inc), "WRN_ORT_LIBRARY": str(ort_library()),
               "WRN_JSON_INCLUDE_DIR": str(json_inc)}
        if openvino_dir():
            out["OpenVINO_DIR"] = str(openvino_dir())
    except Missing as e:
        print(f"fetch_deps: {e}", file=sys.stderr)
        return 3
    if args.cache:
        kinds = {"WRN_ORT_LIBRARY": "FILEPATH"}
        lines = [f'set({k} "{v}" CACHE {kinds.get(k, "PATH")} "")' for k, v in out.items()]
        try:
            Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
            Path(args.cache).write_text("\n".join(lines) + "\n")
        except OSError as e:
            print(f"fetch_deps: cannot write {args.cache} ({e.strerror})", file=sys.stderr)
            return 3
        print(f"wrote {args.cache}")
    elif args.json:
        print(json.dumps(out))
    else:
        print("\n".join(f"-D{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
