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
rewrite the record, so what decides which code a server runs is checked without it: only the file
names ``triton`` writes (no second ``.py``, no backend library, no second version folder), a
``config.pbtxt`` that is exactly what ``triton`` writes for the card beside it (no other model file,
Python environment, op library or instance name), ``model.py`` by content and plans by the trust
policy. ``serve`` then serves a private copy of what it checked (``private_copy``), so the folder
cannot change between the check and the server's reads.
"""

import json
import re
from pathlib import Path

from wrn_deploy import plan_trust
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import sha256_file
from wrn_deploy.triton import config as C

RECORD = "wrn-deploy-files.json"
FORMAT = "wrn-deploy.triton-files/1"
PYTHON_MODEL = Path(__file__).with_name("python_model.py")


def record_text(folder) -> str:
    """The record of every file under ``folder`` (the record itself excluded)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p != folder / RECORD}
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
        if p.is_file() and p != folder / RECORD:
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
    _check_layout(folder)
    _check_config(folder)
    for p in on_disk.values():
        if p.name == "model.py" and p.read_bytes() != PYTHON_MODEL.read_bytes():
            raise UserError(f"{p} is not wrn-deploy's Python-backend model (this version's); a server would run it")
        if p.name == "model.onnx":
            _check_no_engine_inside(p)
        if p.suffix in (".plan", ".engine"):
            trust = plan_trust.Trust(p, verify_key, allow_unverified, warn).preflight()
            trust.verify(p.read_bytes())


# Every file `triton` writes in a model folder (the record aside); anything else (a second .py, a
# backend's .so, which Triton looks for in the model folder first) is refused even when recorded.
_WRITTEN = re.compile(r"config\.pbtxt|labels\.txt|card\.json|1/__pycache__"
                      r"|1/model\.(onnx|py|safetensors|plan|plan\.json|plan\.sig)")


_BACKENDS = ("python", "onnxruntime", "tensorrt", "openvino")  # what `triton` writes (the config names one)
_PARAMETERS = {"wrn_deploy.arch", "wrn_deploy.precision", *C.OPENVINO_PARAMETERS}  # the keys it writes


def _check_no_engine_inside(path: Path) -> None:
    """An ONNX file can carry a compiled engine (an ``EPContext`` node) that ONNX Runtime's TensorRT
    provider deserializes: native code the trust policy never saw. wrn-deploy's exports have none."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf raises several types for a damaged file
        raise UserError(f"{path} is not a readable ONNX file") from None
    if any(n.op_type == "EPContext" for n in _every_node(model)):
        raise UserError(f"{path} holds a compiled engine (an EPContext node); wrn-deploy's exports hold none")
    if any(t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) for t in _every_tensor(model)):
        # a runtime would read the named file as weights: one outside the folder, or one never checked
        raise UserError(f"{path} keeps tensor data in other files; wrn-deploy's exports are one self-contained file")


def _every_tensor(model):
    """Every stored tensor: initializers (sparse ones too) and tensor attributes, in every graph.
    An attribute of another type reads as an empty default tensor, which holds no data anywhere."""
    def sparse(sps):
        return (t for sp in sps for t in (sp.values, sp.indices))

    nodes = list(_every_node(model))
    graphs = [model.graph, *(g for n in nodes for a in n.attribute for g in (a.g, *a.graphs))]
    for g in graphs:
        yield from g.initializer
        yield from sparse(g.sparse_initializer)
    for a in (a for n in nodes for a in n.attribute):
        yield a.t
        yield from a.tensors
        yield from sparse([a.sparse_tensor, *a.sparse_tensors])


def _every_node(model):
    """The nodes of the main graph, of every subgraph (If, Loop, Scan bodies), however deep, and of
    local functions. (An attribute that is not a graph reads as an empty one.)"""
    todo = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    while todo:
        n = todo.pop()
        yield n
        todo += [m for a in n.attribute for g in (a.g, *a.graphs) for m in g.node]


def _check_layout(folder: Path) -> None:
    """Regular files and the version folder ``1`` only: no pipe, no other folder (Triton would serve
    a version folder ``2`` instead of ``1``). Links were refused before, with the file record."""
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_dir() and rel != "1" or not (p.is_dir() or p.is_file()):
            raise UserError(f"{p} is not a file or folder wrn-deploy triton writes")
        if p.is_file() and rel != RECORD and not _WRITTEN.fullmatch(rel):
            raise UserError(f"{p} is not a file wrn-deploy triton writes; a server could load it as code")


def _check_config(folder: Path) -> None:
    """``config.pbtxt`` must be, byte for byte, what ``triton`` writes for the card beside it with the
    options the config states: no other field (another model file, a Python environment, an op
    library, an instance name that reaches the stub's shell command, a label file elsewhere)."""
    from wrn_deploy.card import Card
    from wrn_deploy.runners.base import TensorMeta

    path = folder / "config.pbtxt"
    if not path.is_file() or not (folder / "card.json").is_file():
        raise UserError(f"{folder} lacks config.pbtxt or card.json; wrn-deploy triton writes both")
    try:
        text = path.read_text(encoding="utf-8")
        card = Card.from_dict(json.loads((folder / "card.json").read_text(encoding="utf-8")), str(folder / "card.json"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{folder}: config.pbtxt or card.json is not UTF-8 text or JSON") from None
    cfg = C.parse(text, str(path))
    if cfg is None:
        raise UserError(f"cannot check {path} without tritonclient (pip install 'wrn-deploy[triton]')")
    if cfg.name != folder.name or not C.name_ok(folder.name):
        raise UserError(f"{path} names the model {cfg.name!r} in a folder named {folder.name!r}")
    try:
        from tritonclient.grpc import model_config_pb2 as mc

        (ci,), (co,), (group, *more) = cfg.input, cfg.output, cfg.instance_group
        dtype = {v: k for k, v in C.DTYPES.items()}
        inp = TensorMeta(ci.name, dtype[mc.DataType.Name(ci.data_type)], (-1, *ci.dims))
        out = TensorMeta(co.name, dtype[mc.DataType.Name(co.data_type)], (-1, *co.dims))
        opts = C.ServeOptions(cfg.name, cfg.backend, cfg.max_batch_size, group.count,
                              "gpu" if group.kind == mc.ModelInstanceGroup.KIND_GPU else "cpu",
                              cfg.dynamic_batching.max_queue_delay_microseconds,
                              bool(cfg.optimization.execution_accelerators.gpu_execution_accelerator))
        same = not more and cfg.backend in _BACKENDS and text == C.render(card, inp, out, opts)
    except (UserError, ValueError, KeyError, IndexError, AttributeError):
        same = False
    # What render never writes, checked on the parsed config too (should render ever be fooled):
    # code to load (op libraries, repository agents, a Python environment) or another model file.
    same = same and not cfg.model_operations.op_library_filename and not cfg.model_repository_agents.agents \
        and set(cfg.parameters) <= _PARAMETERS and cfg.default_model_filename in ("", C.OPENVINO_MODEL_FILE)
    if not same:
        raise UserError(f"{path} is not the config wrn-deploy triton writes for this model (edited, or from another "
                        "version): write the repository again")
    labels = folder / "labels.txt"
    if not labels.is_file() or labels.read_bytes() != "".join(c + "\n" for c in card.classes).encode():
        raise UserError(f"{labels} does not list the card's class names; write the repository again")


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


def private_copy(repo, dest: Path) -> Path:
    """Copy ``repo`` into ``dest`` (a folder only this process can reach), reading each file once and
    refusing links and anything that is neither a regular file nor a folder (a pipe would block)."""
    import os
    import shutil
    import stat

    def copy(src: Path, dst: Path, top: bool = False) -> None:
        dst.mkdir()
        for entry in sorted(os.scandir(src), key=lambda e: e.name):
            s, d = Path(entry.path), dst / entry.name
            if entry.is_symlink():
                raise UserError(f"{s} is a link; a repository that wrn-deploy wrote has none")
            if entry.is_dir(follow_symlinks=False):
                copy(s, d)
                continue
            if top:  # a file beside the model folders (a README): Triton reads none, nor is it checked
                continue
            try:
                fd = os.open(s, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as e:
                raise UserError(f"cannot read {s}: {e.strerror}") from None
            with open(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise UserError(f"{s} is not a regular file")
                with open(d, "xb") as out:
                    shutil.copyfileobj(f, out, 1 << 20)

    copy(Path(repo), dest, top=True)
    return dest
