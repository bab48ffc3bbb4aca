"""Step records: a step's key is the hash of its name, options and the sha256 of every input file;
its record lists the sha256 of every output. A step whose key is unchanged and whose outputs are
still the files it wrote is skipped; anything else reruns, and so does everything downstream (their
inputs' hashes change with it).

Records live in ``OUT/steps/NAME.json`` and are written after the step's outputs are in place, so an
interrupted step has no record and runs again.

A record carries the sha256 of the step's inputs and outputs and its own ``digest``: the sha256 of
the pipeline folder's run id (``pipeline.json``) and the record's canonical JSON. A record edited by
hand, or copied from another pipeline folder, no longer matches its digest; an output edited or
swapped no longer matches its sha256. Either makes the step run again, and ``fresh`` says why so the
report can show it. The digest detects edits and copies; it is not a signature (someone who can
write the folder can recompute it).
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


def record_digest(rec: dict, run: str) -> str:
    """The sha256 of the run id and the record's canonical JSON (its own digest left out)."""
    body = {k: v for k, v in rec.items() if k != "digest"}
    text = run + "\n" + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Records:
    def __init__(self, out: Path, hashes: Hashes, run: str = ""):
        self.out = Path(out)
        self.folder = self.out / "steps"
        self.hashes = hashes
        self.run = run  # the pipeline folder's run id: a record from another folder does not verify

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def _read(self, name: str) -> tuple:
        """(record, None), (None, why it cannot be used) or (None, None) when there is none."""
        path = self.path(name)
        if not path.exists():
            return None, None
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            return None, f"its record {path.relative_to(self.out)} is unreadable"
        if not isinstance(rec, dict) or rec.get("format") != FORMAT:
            return None, f"its record {path.relative_to(self.out)} is not a wrn-deploy step record"
        if rec.get("digest") != record_digest(rec, self.run):
            return None, (f"its record {path.relative_to(self.out)} was edited or comes from another pipeline "
                          "folder (its digest does not match)")
        return rec, None

    def load(self, name: str) -> dict | None:
        return self._read(name)[0]

    def fresh(self, name: str, key: str, inputs: dict | None = None) -> tuple:
        """(record, None) when the step can be skipped: a record that verifies, the same key and input
        hashes, done, every output unchanged. Otherwise (None, why), ``why`` None for the ordinary
        reasons (no record yet, a changed input or option, an unfinished step)."""
        rec, why = self._read(name)
        if rec is None or rec.get("key") != key or rec.get("status") not in ("done", "skipped"):
            return None, why
        if inputs is not None and rec.get("inputs") != inputs:
            return None, None
        for rel, digest in rec.get("outputs", {}).items():
            path = self.out / rel
            if not path.is_file():
                return None, f"its output {rel} is missing"
            if self.hashes(path) != digest:
                return None, f"its output {rel} changed since the step wrote it"
        return rec, None

    def save(self, name: str, key: str, status: str, outputs: list = (), inputs: dict | None = None,
             **fields) -> dict:
        """Outputs are recorded relative to OUT, so a pipeline folder can move."""
        rec = {"format": FORMAT, "step": name, "key": key, "status": status, "inputs": inputs or {},
               "outputs": {str(Path(p).relative_to(self.out)): self.hashes(p) for p in outputs}, **fields}
        rec["digest"] = record_digest(rec, self.run)
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
