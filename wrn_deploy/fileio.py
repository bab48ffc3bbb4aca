"""Outputs that never destroy anything: checked before the work, written to a temporary name and
renamed with the umask's permissions, and never the same file as an input.

Temporary files are named ``.NAME.PID.wrn-tmp.XXXX``: a run killed mid-write leaves one behind, and
the next write into that folder removes those whose process is gone.
"""

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from wrn_deploy.errors import UserError

TMP_TAG = ".wrn-tmp."


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` are one file: the same path, a symlink to it, or a hard link."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_output(path, inputs=(), force: bool = False, flag: str = "--force") -> Path:
    """Refuse, before any work, an output that would destroy something: an input (through any
    link) always, an existing file unless ``force``. Its folder must exist and be writable."""
    path = Path(path)
    for inp in inputs:
        if inp is not None and same_file(path, inp):
            raise UserError(f"{path} is the input {inp}; choose another output path")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path")
    if (path.exists() or path.is_symlink()) and not force:
        raise UserError(f"{path} exists; pass {flag} to replace it")
    check_writable_dir(path.parent)
    return path


def check_writable_dir(folder) -> Path:
    """An existing folder we can create files in, proven by creating one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"output folder {folder} is not writable: {e.strerror}") from None
    return folder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temporaries(folder) -> None:
    """Remove temporary files that killed runs left in ``folder`` (their process is gone)."""
    for p in Path(folder).glob(f".*{TMP_TAG}*"):
        pid = p.name.split(TMP_TAG)[0].rsplit(".", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                p.unlink()


@contextlib.contextmanager
def atomic_output(path, mode: int | None = None, replace: bool = True):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    The file gets ``mode`` (for secrets) or what the umask allows, as an ordinary file would:
    mkstemp's 0600 would make models unreadable to a server running as another user. With
    ``replace=False`` a file that appeared at ``path`` meanwhile (another run) is never replaced:
    the temporary file is hard-linked into place, which fails if the name is taken.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # written, such a file could not be opened by ONNX Runtime or Triton
        raise UserError(f"output path {os.fsencode(path)!r} is not valid UTF-8; choose another name") from None
    sweep_stale_temporaries(path.parent)
    try:
        # The name's first 50 characters: a legal 250-byte name plus the suffix would not be legal.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:50]}.{os.getpid()}{TMP_TAG}", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write in {path.parent}: {e.strerror}") from None
    os.close(fd)
    try:
        try:
            yield Path(tmp)
        except OSError as e:  # a full disk says which output it could not write, not the temporary name
            if e.errno is not None and e.filename in (None, tmp, str(tmp)):
                raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from None
            raise
        os.chmod(tmp, mode if mode is not None else 0o666 & ~umask())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UserError(f"{path} appeared while this ran (another run?); pass --force to replace it") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, data, replace: bool = True) -> None:
    with atomic_output(path, replace=replace) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path, text: str, mode: int | None = None, replace: bool = True) -> None:
    with atomic_output(path, mode, replace) as tmp:
        tmp.write_text(text)


def relative_to(path, artifact) -> str:
    """``path`` as seen from the folder of ``artifact``: how files written beside an artifact name the
    files they point to, so they hold no folder of the machine (or the run) that wrote them."""
    return Path(os.path.relpath(Path(path).absolute(), Path(artifact).absolute().parent)).as_posix()


def named_from(path, artifact) -> str:
    """How a report beside ``artifact`` names a file it only mentions: relative to the report's
    folder while that climbs at most one level (``../run/best.safetensors``), otherwise the file's
    name alone, since a longer climb spells out the folders of the machine that wrote it."""
    rel = relative_to(path, artifact)
    return rel if rel.split("/").count("..") <= 1 else Path(path).name


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_writable_dir(path) -> Path:
    """Create ``path`` if needed and prove it is writable, or raise a one-line UserError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"output folder {path} is not writable: {e.strerror}") from None
    return check_writable_dir(path)


# A scratch folder's name, and the file inside it that says wrn-deploy made it: only folders with
# both are ever removed by another run (a user's "wrn-deploy-results" folder in /tmp is not ours).
_SCRATCH_NAME = re.compile(r"wrn-deploy-scratch-(\d+)-[a-z0-9-]+-[a-z0-9_]{8}")
_SCRATCH_MARK = ".wrn-deploy-scratch"


@contextlib.contextmanager
def scratch_dir(what: str):
    """A temporary folder named ``wrn-deploy-scratch-PID-WHAT-XXXXXXXX``, whose mark file this run
    holds locked while it lives. Folders of that exact form whose mark is unlocked and whose process
    is gone (a killed run) are removed first; nothing else in the temporary directory is touched.
    The lock, not only the process id, says a run is alive: a run in another PID namespace (a
    container sharing /tmp) can hold a number this one sees as dead."""
    import fcntl
    import shutil

    base = Path(tempfile.gettempdir())
    for p in base.glob("wrn-deploy-scratch-*"):
        m = _SCRATCH_NAME.fullmatch(p.name)
        if m and not p.is_symlink() and not _pid_alive(int(m.group(1))) and _unheld(p / _SCRATCH_MARK):
            shutil.rmtree(p, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"wrn-deploy-scratch-{os.getpid()}-{what}-") as tmp:
        with open(Path(tmp) / _SCRATCH_MARK, "w") as mark:
            fcntl.flock(mark, fcntl.LOCK_EX)
            yield tmp


def _unheld(mark: Path) -> bool:
    """True when ``mark`` is a regular file no process holds locked."""
    import fcntl

    try:
        fd = os.open(mark, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def folder_lock(folder, what: str):
    """Hold an exclusive lock on ``folder`` (``.lock`` inside it); a second holder is refused.
    The kernel drops the lock when the process dies, SIGKILL included."""
    import fcntl

    lock = open(Path(folder) / ".lock", "a")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another {what} is using {folder}; wait for it or choose another folder") from None
        yield
    finally:
        lock.close()
