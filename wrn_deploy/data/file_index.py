"""What an image folder holds, without decoding it: each file's SHA-256, pixel size and whether its
header reads, cached by path and ``stat`` (size, modification and change times, inode) in a sidecar
database, as DVC and similar tools do. The first command on a folder reads every file once (bytes,
not pixels); the next ones only ``stat`` them. Writing, replacing or moving a file changes its
change time or inode (neither can be set by a user), so it is read again, and a changed image still
changes the folder's identity; a renamed one changes it through its path.

The database is ``$XDG_CACHE_HOME/wrn-deploy/file-index.sqlite`` (``~/.cache`` by default), or
``WRN_DEPLOY_FILE_INDEX``; where it cannot be opened the files are simply read every time. It holds
digests and sizes only: nothing in it is ever executed or unpickled, and a row of the wrong shape
counts as missing. It is trusted as the user's own files are: whoever can write it can also write
the images.
"""

import hashlib
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SCHEMA = ("CREATE TABLE IF NOT EXISTS files_v2 (path TEXT PRIMARY KEY, stat TEXT, sha256 TEXT, width INTEGER, "
          "height INTEGER, error TEXT)")
HEX = frozenset("0123456789abcdef")


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
    """``FileFacts`` of every path, from the cache where its ``stat`` still matches."""
    import warnings

    from PIL import Image
    from tqdm import tqdm

    paths = [_checked_name(os.path.abspath(p)) for p in paths]
    stats = [_stat_key(p) for p in paths]
    db = _open()
    known = _known(db, paths) if db else {}
    out = {}
    for p, st in zip(paths, stats):
        if st is not None and p in known and known[p][0] == st:
            out[p] = known[p][1]
    missing = [i for i, p in enumerate(paths) if p not in out]
    # Reading files is I/O and hashing releases the GIL: threads keep a cold folder's first pass
    # short. PIL's pixel-count warning is silenced for them (the size is checked in _header).
    with warnings.catch_warnings(), ThreadPoolExecutor(8) as pool, \
            tqdm(total=len(missing), desc=desc, unit="file", leave=False, disable=not progress or not missing) as bar:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for i, fact in zip(missing, pool.map(lambda i: _read(paths[i]), missing)):
            out[paths[i]] = fact
            bar.update()
    rows = [(paths[i], stats[i], *_row(out[paths[i]])) for i in missing if stats[i] is not None]
    if db and rows:
        _store(db, rows)
    if db:
        db.close()
    return [out[p] for p in paths]


def _checked_name(path: str) -> str:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        from wrn_deploy.errors import UserError

        raise UserError(f"{path.encode('utf-8', 'surrogateescape')!r}: the file name is not valid UTF-8; "
                        "rename it") from None
    return path


def _stat_key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # gone (a dangling link, say): _read says so, and it is not cached
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}"


def _row(f: FileFacts) -> tuple:
    return f.sha256, f.width, f.height, f.error


def _read(path: str) -> FileFacts:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except OSError as e:
        return FileFacts("0" * 64, 0, 0, e.strerror or type(e).__name__)
    w, h_, error = _header(path)
    return FileFacts(h.hexdigest(), w, h_, error)


def _header(path: str) -> tuple:
    """(width, height, None) from the image header, or (0, 0, why) when it does not read. Thread-safe:
    the decompression-bomb limit is checked here, not through PIL's warning."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, Image.DecompressionBombError):
            return 0, 0, _bomb()
        return 0, 0, (str(e).splitlines()[0] if str(e) else type(e).__name__)
    if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
        return 0, 0, _bomb()
    return w, h, None


def _bomb() -> str:
    from PIL import Image

    return f"it has more pixels than PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS})"


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
    """{path: (stat key, FileFacts)} for the well-formed cached rows under the paths' common folder
    (one range query instead of a query a file)."""
    root = os.path.commonpath(paths) if paths else "/"
    try:
        rows = db.execute("SELECT path, stat, sha256, width, height, error FROM files_v2 "
                          "WHERE path >= ? AND path < ?", (root, root + "\U0010ffff")).fetchall()
    except sqlite3.Error:
        return {}
    return {r[0]: (r[1], FileFacts(*r[2:])) for r in rows if _well_formed(r)}


def _well_formed(row) -> bool:
    _, stat, sha, w, h, error = row
    return (isinstance(stat, str) and isinstance(sha, str) and len(sha) == 64 and set(sha) <= HEX
            and isinstance(w, int) and isinstance(h, int) and w >= 0 and h >= 0
            and (error is None or isinstance(error, str)))


def _store(db, rows: list) -> None:
    try:
        with db:
            db.executemany("INSERT OR REPLACE INTO files_v2 VALUES (?, ?, ?, ?, ?, ?)", rows)
    except sqlite3.Error:
        pass  # a read-only or busy cache only costs the next command a re-read
