"""What an image folder holds, without decoding it: each file's SHA-256, pixel size and whether its
header reads, cached by (path, size, modification time) in a sidecar database, as DVC and similar
tools do. The first command on a folder reads every file once (bytes, not pixels); the next ones
only ``stat`` them. A file whose size or time changed is read again, so a changed image still
changes the folder's identity; a renamed one changes it through its path.

The database is ``$XDG_CACHE_HOME/wrn-deploy/file-index.sqlite`` (``~/.cache`` by default), or
``WRN_DEPLOY_FILE_INDEX``; where it cannot be opened the files are simply read every time. It holds
digests and sizes only: nothing in it is ever executed or unpickled.
"""

import hashlib
import io
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SCHEMA = ("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
          "sha256 TEXT, width INTEGER, height INTEGER, error TEXT)")


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    width: int
    height: int
    error: str | None   # why the image header cannot be read; None when it can


def database() -> Path:
    env = os.environ.get("WRN_DEPLOY_FILE_INDEX")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wrn-deploy" / "file-index.sqlite"


def facts(paths: list, progress: bool = False, desc: str = "indexing") -> list:
    """``FileFacts`` of every path, from the cache where its size and time still match."""
    from tqdm import tqdm

    paths = [os.path.abspath(p) for p in paths]
    stats = [os.stat(p) for p in paths]
    db = _open()
    known = _known(db, paths) if db else {}
    missing = [i for i, (p, st) in enumerate(zip(paths, stats))
               if known.get(p, (None,))[0:2] != (st.st_size, st.st_mtime_ns)]
    out = {p: FileFacts(*row[2:]) for p, row in known.items()}
    # Reading files is I/O and hashing releases the GIL: threads keep a cold folder's first pass short.
    with ThreadPoolExecutor(8) as pool, tqdm(total=len(missing), desc=desc, unit="file", leave=False,
                                             disable=not progress or not missing) as bar:
        for i, fact in zip(missing, pool.map(lambda i: _read(paths[i]), missing)):
            out[paths[i]] = fact
            bar.update()
    if db and missing:
        _store(db, [(paths[i], stats[i].st_size, stats[i].st_mtime_ns, *_row(out[paths[i]])) for i in missing])
    if db:
        db.close()
    return [out[p] for p in paths]


def _row(f: FileFacts) -> tuple:
    return f.sha256, f.width, f.height, f.error


def _read(path: str) -> FileFacts:
    data = Path(path).read_bytes()
    w, h, error = _header(data)
    return FileFacts(hashlib.sha256(data).hexdigest(), w, h, error)


def _header(data: bytes) -> tuple:
    """(width, height, None) from the image header, or (0, 0, why) when it does not read."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size[0], im.size[1], None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            return 0, 0, f"it has more pixels than PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS})"
        return 0, 0, (str(e).splitlines()[0] if str(e) else type(e).__name__)


def _open():
    path = database()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=60)
        db.execute(SCHEMA)
        return db
    except (OSError, sqlite3.Error):
        return None  # no cache: every file is read, nothing else changes


def _known(db, paths: list) -> dict:
    """{path: (size, mtime_ns, sha256, width, height, error)} for the cached rows under the paths'
    common folder (one range query instead of a query a file)."""
    root = os.path.commonpath(paths) if paths else "/"
    try:
        rows = db.execute("SELECT path, size, mtime_ns, sha256, width, height, error FROM files "
                          "WHERE path >= ? AND path < ?", (root, root + "\U0010ffff")).fetchall()
    except sqlite3.Error:
        return {}
    return {r[0]: r[1:] for r in rows}


def _store(db, rows: list) -> None:
    try:
        with db:
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    except sqlite3.Error:
        pass  # a read-only or busy cache only costs the next command a re-read
