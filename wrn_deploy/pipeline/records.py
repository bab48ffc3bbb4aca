"""Step records: a step's key is the hash of its name, options and the sha256 of every input file;
its record lists the sha256 of every output. A step whose key is unchanged and whose outputs are
still the files it wrote is skipped; anything else reruns, and so does everything downstream (their
inputs' hashes change with it).

Records live in ``OUT/steps/NAME.json`` and are written after the step's outputs are in place, so an
interrupted step has no record and runs again.
"""

import hashlib
import json
import os
from pathlib import Path

from wrn_deploy import __version__
from wrn_deploy.fileio import sha256_file, write_json

FORMAT = "wrn-deploy.step/1"


class Hashes:
    """sha256 of files, computed once per (path, size, mtime) within one pipeline run."""

    def __init__(self):
        self._seen: dict = {}

    def __call__(self, path) -> str:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._seen:
            self._seen[key] = sha256_file(path)
        return self._seen[key]


def step_key(name: str, options: dict, inputs: dict) -> str:
    """``inputs``: {role: sha256 or other fingerprint}. The wrn-deploy version is part of every key."""
    text = json.dumps({"step": name, "version": __version__, "options": options, "inputs": inputs},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Records:
    def __init__(self, out: Path, hashes: Hashes):
        self.out = Path(out)
        self.folder = self.out / "steps"
        self.hashes = hashes

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def load(self, name: str) -> dict | None:
        try:
            rec = json.loads(self.path(name).read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and rec.get("format") == FORMAT else None

    def fresh(self, name: str, key: str) -> dict | None:
        """The step's record when it can be skipped: same key, done, every output unchanged."""
        rec = self.load(name)
        if not rec or rec.get("key") != key or rec.get("status") not in ("done", "skipped"):
            return None
        for rel, digest in rec.get("outputs", {}).items():
            path = self.out / rel
            if not path.is_file() or self.hashes(path) != digest:
                return None
        return rec

    def save(self, name: str, key: str, status: str, outputs: list = (), **fields) -> dict:
        """Outputs are recorded relative to OUT, so a pipeline folder can move."""
        rec = {"format": FORMAT, "step": name, "key": key, "status": status,
               "outputs": {str(Path(p).relative_to(self.out)): self.hashes(p) for p in outputs}, **fields}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.path(name), rec)
        return rec

    def forget(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)


def data_fingerprint(name: str, data_dir) -> str:
    """What identifies a dataset's files without reading them: every file's relative path, size and
    modification time under ``data_dir`` (built-in data: its name). Editing, adding or removing an
    image changes it; the steps' own identity checks (digests of the pixels) still run."""
    if not data_dir:
        return name
    root = Path(data_dir)
    h = hashlib.sha256(name.encode())
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
