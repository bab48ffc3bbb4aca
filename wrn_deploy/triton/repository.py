"""A Triton model repository for one artifact, written whole or not at all.

```
REPO/NAME/config.pbtxt     backend, shapes, dtypes, dynamic batching, instances, warm-up
REPO/NAME/labels.txt       the card's class names, one a line (Triton's classification extension)
REPO/NAME/card.json        the artifact's card: what the input must be (normalised inside the graph)
REPO/NAME/1/model.onnx     native onnxruntime backend, or Triton's openvino backend (it reads ONNX), or
REPO/NAME/1/model.plan     native tensorrt backend (+ model.plan.json manifest, .sig), or
REPO/NAME/1/model.py       Python backend + the artifact beside it (any kind, through its runner)
REPO/NAME/wrn-deploy-files.json   every file above with its sha256 (``files.py``; ``serve`` checks it)
```

A plan is copied only after the trust policy verified it (``plan_trust.Trust``: its manifest's size
and sha256, and the signature where a key is known), and the copy holds exactly the verified bytes.

The model folder is built under a temporary name beside its final place and renamed into place, so
a failed write leaves nothing, and files get the umask's permissions (a server running as another
user can read them).
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from wrn_deploy import plan_trust
from wrn_deploy.card import artifact_kind, manifest_path, read_card
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import check_writable_dir, scratch_dir, umask
from wrn_deploy.runners.base import TensorMeta
from wrn_deploy.triton import config as C
from wrn_deploy.triton.files import RECORD, record_text



@dataclass
class Written:
    folder: Path
    config: str
    backend: str
    loaded: str   # what the real-load check found: "loaded", or why it was not tried


def _profile(path: Path, man: dict) -> tuple:
    prof = man.get("profile")
    lo, hi = (prof.get("min"), prof.get("max")) if isinstance(prof, dict) else (None, None)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (lo, hi)) or lo > hi:
        raise UserError(f"{manifest_path(path)}: 'profile' (the batch range min/max) is missing or not two "
                        "positive integers; the manifest is damaged")
    return lo, hi


def artifact_io(path: Path, card, manifest: dict | None = None) -> tuple:
    """(input TensorMeta, output TensorMeta, batch range) of the artifact.

    ONNX files and checkpoints are asked through their runner; a plan cannot be opened without a
    GPU, so its card and (checked) manifest, with the batch profile, answer for it."""
    kind = artifact_kind(path)
    if kind == "plan":
        man = manifest if manifest is not None else plan_trust.read_manifest(path)[0]
        if man is None:
            raise UserError(f"{path} has no manifest ({manifest_path(path).name}), so its batch range is unknown")
        s, io = card.input_size, card.input.dtype
        return (TensorMeta(card.input.name, io, (-1, 3, s, s)), TensorMeta("logits", io, (-1, card.num_classes)),
                _profile(path, man))
    from wrn_deploy.runners import runner_for

    with runner_for(path) as runner:
        (inp,), (out,) = runner.inputs(), runner.outputs()
        return inp, out, runner.batch_range()


def _backend(kind: str, opts: C.ServeOptions) -> str:
    wanted = opts.backend
    if wanted == "python":
        return "python"
    if wanted == "openvino":
        if kind != "onnx":
            raise UserError(f"Triton's openvino backend serves an ONNX file, not a {kind}: give the .onnx, or pass "
                            "--backend python")
        if opts.kind != "cpu":
            raise UserError("Triton's openvino backend runs CPU instances only: use --kind cpu")
        return "openvino"
    if kind == "checkpoint":
        raise UserError("a checkpoint has no native Triton backend: export it, or pass --backend python")
    return C.BACKENDS[kind][0]


def write_repository(artifact, repo, opts: C.ServeOptions, force: bool = False, check_load: bool = True,
                     verify_key=None, allow_unverified: bool = False, warn=print, raw_pixels: bool = False) -> Written:
    """``raw_pixels``: serve an ONNX file behind a UINT8 0-255 input (``export.raw_pixels``)."""
    artifact, repo = Path(artifact), Path(repo)
    if not C.name_ok(opts.name):
        raise UserError(f"model name {opts.name!r}: use letters, digits, '-', '_' and '.'")
    kind = artifact_kind(artifact)
    if raw_pixels and kind != "onnx":
        raise UserError(f"--raw-pixels puts a UINT8 input in front of an ONNX file, not a {kind}: "
                        + ("export it with --raw-pixels" if kind == "checkpoint" else
                           "build the plan from an ONNX file exported with --raw-pixels"))
    trust = data = None
    if kind == "plan":  # the trust policy first, on the bytes that will be copied
        trust = plan_trust.Trust(artifact, verify_key, allow_unverified, warn).preflight()
        data = artifact.read_bytes()
        trust.verify(data)
    card = read_card(artifact)
    backend = _backend(kind, opts)
    opts = C.ServeOptions(**{**opts.__dict__, "backend": backend})
    final = repo / opts.name
    if final.exists() and not force:
        raise UserError(f"{final} exists; pass --force to replace it")
    if final.resolve() in artifact.resolve().parents:
        raise UserError(f"{artifact} is inside {final}; write the repository elsewhere")
    with scratch_dir("triton") as scratch:
        served = artifact
        if raw_pixels:
            from wrn_deploy.export.raw_pixels import add_raw_pixel_front

            served = Path(scratch) / C.BACKENDS["onnx"][1]
            add_raw_pixel_front(artifact, served, final / "1" / served.name)
            card, data = read_card(served), served.read_bytes()
        return _write(served, repo, final, opts, kind, card, data, trust, check_load)


def _write(artifact: Path, repo: Path, final: Path, opts: C.ServeOptions, kind: str, card, data, trust,
           check_load: bool) -> Written:
    backend = opts.backend
    inp, out, batch_range = artifact_io(artifact, card, trust.manifest if trust else None)
    text = C.render(card, inp, out, opts)
    cfg = C.parse(text, f"{final}/config.pbtxt")
    if cfg is not None:
        C.check_semantics(cfg, card, inp, out, batch_range, f"{final}/config.pbtxt")
    repo.mkdir(parents=True, exist_ok=True)
    check_writable_dir(repo)
    tmp = repo / f".{opts.name}.wrn-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _fill(tmp, artifact, kind, card, text, backend, data)
        loaded = _check_load(repo, tmp, opts.name, backend) if check_load else "not checked (--no-check-load)"
        _swap_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Written(final, text, backend, loaded)


def _fill(folder: Path, artifact: Path, kind: str, card, text: str, backend: str, data: bytes | None) -> None:
    version = folder / "1"
    version.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(text)
    (folder / "labels.txt").write_text("".join(c + "\n" for c in card.classes))
    (folder / "card.json").write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    target = version / ("model.safetensors" if kind == "checkpoint" else C.BACKENDS[kind][1])
    if data is not None:  # a plan: exactly the bytes the trust policy verified (or a raw-pixel front)
        target.write_bytes(data)
    else:
        shutil.copyfile(artifact, target)
    for side in (manifest_path(artifact), Path(f"{artifact}.sig")):
        if kind == "plan" and side.exists():
            shutil.copyfile(side, Path(str(target) + side.name[len(artifact.name):]))
    if backend == "python":
        shutil.copyfile(Path(__file__).with_name("python_model.py"), version / "model.py")
        # An empty file where Python would make its bytecode folder: the server's Python stub cannot
        # leave a model.pyc beside model.py (it ignores PYTHONDONTWRITEBYTECODE here), so the folder
        # stays exactly as recorded and `serve` accepts it again after a server ran it.
        (version / "__pycache__").write_bytes(b"")
    (folder / RECORD).write_text(record_text(folder))
    mode = 0o666 & ~umask()
    for p in folder.rglob("*"):
        p.chmod(mode | (0o111 & ~umask()) if p.is_dir() else mode)
    folder.chmod(0o777 & ~umask())


def _check_load(repo: Path, folder: Path, name: str, backend: str) -> str:
    """Load the model in a real tritonserver, where one exists here, before it is put in place."""
    from wrn_deploy.triton.server import find_tritonserver, missing_backend, served_repository

    binary = find_tritonserver()
    if binary is None:
        return "not checked (no tritonserver here)"
    why = missing_backend(binary, backend)
    if why:
        return f"not checked ({why})"
    # Load the candidate from a private repository that holds only it, under its final name.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wrn-deploy-triton-check-") as tmp:
        (Path(tmp) / name).symlink_to(folder.resolve(), target_is_directory=True)
        server = served_repository(tmp, models=(name,), log=Path(tmp) / "server.log")
        try:
            server.start(timeout=180)
        except UserError as e:
            raise UserError(f"tritonserver refused the generated model {name}: {e.format_message()}") from None
        finally:
            server.stop()
    return f"loaded by a real tritonserver ({binary.source})"


def _swap_into_place(tmp: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old.wrn-tmp")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
