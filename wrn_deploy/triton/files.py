"""What ``wrn-deploy triton`` wrote into a model folder, and the check ``serve`` makes before a
tritonserver reads it.

Serving a repository runs what is in it: a Python-backend ``model.py`` is imported by the server's
Python stub, and a plan is native code for TensorRT. So ``triton`` records every file of a model
folder with its sha256 in ``NAME/wrn-deploy-files.json`` (relative paths, sorted keys: no machine
path, the same bytes for the same files), and ``serve`` refuses a repository with a model folder
that has no record, a file that is not recorded or has changed, a recorded file that is gone, a
link, a ``model.py`` that is not this wrn-deploy's own, or a plan that fails the trust policy,
unless the user accepts it by name (``--allow-unverified``).

The record catches edits, swaps and foreign folders; someone who can write the folder can also
rewrite the record, which is why ``model.py`` and plans are checked by content, not by the record.
"""

import json
from pathlib import Path

from wrn_deploy import plan_trust
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import sha256_file

RECORD = "wrn-deploy-files.json"
FORMAT = "wrn-deploy.triton-files/1"
PYTHON_MODEL = Path(__file__).with_name("python_model.py")


def record_text(folder) -> str:
    """The record of every file under ``folder`` (the record itself excluded)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != RECORD}
    return json.dumps({"format": FORMAT, "files": files}, indent=2, sort_keys=True) + "\n"


def _recorded(folder: Path) -> dict:
    path = folder / RECORD
    if not path.is_file():
        raise UserError(f"{folder} was not written by wrn-deploy triton (it has no {RECORD})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path} is not valid UTF-8 JSON") from None
    files = data.get("files") if isinstance(data, dict) and data.get("format") == FORMAT else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise UserError(f"{path} is not a wrn-deploy file record")
    return files


def check_model_folder(folder: Path, verify_key=None, allow_unverified: bool = False, warn=print) -> None:
    """One UserError naming the first file that wrn-deploy did not write as it is."""
    files = _recorded(folder)
    on_disk = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            raise UserError(f"{p} is a link; a repository that wrn-deploy wrote has none")
        if p.is_file() and p.name != RECORD:
            on_disk[p.relative_to(folder).as_posix()] = p
    for rel, p in on_disk.items():
        if rel not in files:
            hint = ("; a server that imported model.py left Python bytecode there (it would run instead of "
                    "model.py): delete that __pycache__ if you trust it" if "__pycache__" in p.parts else "")
            raise UserError(f"{p} is not in {folder / RECORD}: not written by wrn-deploy triton{hint}")
        if sha256_file(p) != files[rel]:
            raise UserError(f"{p} changed after wrn-deploy triton wrote it (its sha256 is not the recorded one)")
    gone = sorted(set(files) - set(on_disk))
    if gone:
        raise UserError(f"{folder / gone[0]} is recorded in {RECORD} but missing")
    for p in on_disk.values():
        if p.name == "model.py" and p.read_bytes() != PYTHON_MODEL.read_bytes():
            raise UserError(f"{p} is not wrn-deploy's Python-backend model (this version's); a server would run it")
        if p.suffix in (".plan", ".engine"):
            trust = plan_trust.Trust(p, verify_key, allow_unverified, warn).preflight()
            trust.verify(p.read_bytes())


def check_repository(repo, verify_key=None, allow_unverified: bool = False, warn=print) -> None:
    """Every model folder of ``repo`` must be as wrn-deploy wrote it (``--allow-unverified``: warn)."""
    repo = Path(repo)
    folders = sorted(p for p in repo.iterdir() if p.is_dir() or p.is_symlink())
    if not folders:
        raise UserError(f"{repo} holds no model folder; write one with wrn-deploy triton")
    for folder in folders:
        try:
            if folder.is_symlink():
                raise UserError(f"{folder} is a link; a repository that wrn-deploy wrote has none")
            check_model_folder(folder, verify_key, allow_unverified, warn)
        except UserError as e:
            if not allow_unverified:
                raise UserError(f"{e.format_message()}; refusing to serve it ({plan_trust.ALLOW_UNVERIFIED} "
                                "serves it anyway)") from None
            warn(f"warning: {e.format_message()}; serving it anyway ({plan_trust.ALLOW_UNVERIFIED})")
