"""The engine manifest (``model.plan.json``), signatures, and the trust policy applied before
TensorRT reads a plan. It needs no TensorRT: ``engine/`` writes and signs with it, and
``runners/trt_runner.py`` checks with it, so it sits in the foundation below both.

A plan is executable code: deserializing an untrusted engine runs untrusted native code, and
TensorRT's own validity check does not detect tampering. So a plan is loaded only after its sha256
matches the manifest, after the Ed25519 signature over plan and manifest verifies whenever a key
is known or a signature lies beside it, and only when the TensorRT version and GPU match what built
it. The bytes that are verified are the bytes that are deserialized.

Trust policy: a public key given with ``--verify-key`` or named by the environment variable
``WRN_DEPLOY_VERIFY_KEY`` makes every plan need a valid signature; without one, a plan that has a
signature beside it is refused (it cannot be checked), an unsigned plan with a matching manifest
loads, and engine host code never runs. A plan that cannot be verified (no manifest, or one whose
size or sha256 does not match) is refused unless the user accepts the risk by name
(``--allow-unverified``); even then a key's signature requirement still holds. The C++ program
(``cpp/src/card.cpp``, ``check_plan``) applies the same rules.
"""

import base64
import hashlib
import json
import os
from pathlib import Path

from wrn_deploy.card import manifest_path
from wrn_deploy.errors import UserError

__all__ = ["ALLOW_UNVERIFIED", "Trust", "check_compatible", "check_integrity", "generate_keypair",
           "load_private_key", "manifest_path", "read_manifest", "sign_bytes", "signature_path", "trusted_key",
           "verify_signature"]

FORMAT = "wrn-deploy.engine/1"
KEY_ENV = "WRN_DEPLOY_VERIFY_KEY"
ALLOW_UNVERIFIED = "--allow-unverified"  # the one option that accepts an unverifiable plan
# What a loader relies on, with the type it must have.
_REQUIRED = {"format": str, "tensorrt_version": str, "gpu": str, "compute_capability": list, "build": dict,
             "plan_sha256": str, "plan_bytes": int, "card": dict}


def signature_path(plan) -> Path:
    return Path(str(plan) + ".sig")


def read_manifest(plan) -> tuple:
    """(manifest dict, its exact bytes), or (None, None) when the plan has none."""
    path = manifest_path(plan)
    if not path.exists():
        return None, None
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path} is not valid UTF-8 JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path} is not a wrn-deploy engine manifest")
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise UserError(f"{path}: {key!r} is missing or not a {kind.__name__}; the manifest is damaged")
    _version(data["tensorrt_version"], path)
    cc = data["compute_capability"]
    if len(cc) != 2 or not all(isinstance(v, int) for v in cc):
        raise UserError(f"{path}: compute_capability must be two integers, got {cc}")
    return data, raw


def _version(text: str, where) -> tuple:
    try:
        major, minor = (int(x) for x in str(text).split(".")[:2])
    except ValueError:
        raise UserError(f"{where}: TensorRT version {text!r} is not MAJOR.MINOR[...]") from None
    return major, minor


def integrity_problem(plan, manifest: dict, data: bytes) -> str | None:
    """Why ``data`` (the plan's bytes, read once) are not exactly those the manifest describes, or None."""
    if len(data) != manifest["plan_bytes"]:
        return f"{plan} is {len(data)} bytes but its manifest says {manifest['plan_bytes']}: truncated or replaced"
    if hashlib.sha256(data).hexdigest() != manifest["plan_sha256"]:
        return f"{plan} does not match the sha256 in its manifest: modified"
    return None


def check_integrity(plan, manifest: dict, data: bytes) -> None:
    problem = integrity_problem(plan, manifest, data)
    if problem:
        raise UserError(f"{problem}; refusing to load it ({ALLOW_UNVERIFIED} accepts the risk)")


class Trust:
    """The trust policy for one plan, applied in two halves: ``preflight`` before any bytes are read
    (manifest, key, signature presence) and ``verify`` on the exact bytes that will be used."""

    def __init__(self, plan, verify_key=None, allow_unverified: bool = False, warn=print):
        self.plan, self.allow, self.warn = Path(plan), allow_unverified, warn
        self.manifest = self.manifest_bytes = None
        self.key = None
        self._verify_key = verify_key

    def preflight(self) -> "Trust":
        plan = self.plan
        if not plan.is_file():
            raise UserError(f"engine {plan} " + ("is not a regular file" if plan.exists() else "does not exist"))
        self.manifest, self.manifest_bytes = read_manifest(plan)
        self.key = trusted_key(self._verify_key)
        if self.key is None and signature_path(plan).exists():
            raise UserError(f"{plan} is signed, but no key is given to verify it: pass --verify-key or set {KEY_ENV}")
        if self.manifest is None and self.key is not None:
            raise UserError(f"{plan} has no manifest ({manifest_path(plan).name}), and the trust policy ({self.key}) "
                            "requires a signature over plan and manifest; refusing to load it")
        if self.manifest is None:
            what = (f"{plan} has no manifest ({manifest_path(plan).name}), so its size and sha256 cannot be "
                    "checked and a plan is executable code")
            if not self.allow:
                raise UserError(f"{what}; refusing to load it ({ALLOW_UNVERIFIED} accepts the risk)")
            self.warn(f"warning: {what}; loading it unverified ({ALLOW_UNVERIFIED})")
        return self

    def verify(self, data: bytes) -> None:
        """``data`` are the bytes TensorRT will read (or a repository will hold)."""
        if self.key is not None:
            verify_signature(self.plan, self.key, data, self.manifest_bytes)
        if self.manifest is None:
            return
        problem = integrity_problem(self.plan, self.manifest, data)
        if problem and not self.allow:
            raise UserError(f"{problem}; refusing to load it ({ALLOW_UNVERIFIED} accepts the risk)")
        if problem:
            self.warn(f"warning: {problem}; loading it unverified ({ALLOW_UNVERIFIED})")


def check_compatible(manifest: dict, trt_version: str, capability: tuple, gpu: str) -> None:
    """One sentence saying what the engine needs and what this machine has, instead of TensorRT's None."""
    built = manifest["tensorrt_version"]
    cc = tuple(manifest["compute_capability"])
    build = manifest["build"]
    vc = build.get("version_compatible", False)
    hw = build.get("hw_compat", build.get("hardware_compatibility", "none"))
    same_trt = built == trt_version or (vc and _vc_runs(built, trt_version))
    same_gpu = cc == tuple(capability) or (hw == "ampere_plus" and tuple(capability) >= (8, 0))
    if same_trt and same_gpu:
        return
    raise UserError(
        f"engine built with TensorRT {built} on sm_{cc[0]}{cc[1]} ({manifest['gpu']}); this machine runs "
        f"TensorRT {trt_version} on sm_{capability[0]}{capability[1]} ({gpu}): rebuild it here, or build "
        "with --version-compatible / --hw-compat ampere_plus")


def _vc_runs(built: str, running: str) -> bool:
    """Version-compatible plans run on the same major at the same or a later minor, and TensorRT 10
    plans on TensorRT 11 (TensorRT's engine compatibility notes)."""
    b, r = _version(built, "the manifest"), _version(running, "this TensorRT")
    return (b[0] == r[0] and r[1] >= b[1]) or (b[0] == 10 and r[0] == 11)


# -- signing -----------------------------------------------------------------------------------------
def _signed_bytes(plan_data: bytes, manifest_bytes: bytes) -> bytes:
    return hashlib.sha256(plan_data).hexdigest().encode() + b"\n" + manifest_bytes


def load_private_key(path):
    """The Ed25519 private key at ``path``, or one line saying why not (checked before a build)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"cannot read the Ed25519 private key {path} ({str(e).splitlines()[0]})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path} is not an Ed25519 private key")
    return key


def _load_public_key(path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"cannot read the Ed25519 public key {path} ({str(e).splitlines()[0]})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path} is not an Ed25519 public key")
    return key


def sign_bytes(private_key, plan_data: bytes, manifest_bytes: bytes) -> str:
    """The base64 signature over the plan's sha256 and the manifest's exact bytes."""
    return base64.b64encode(private_key.sign(_signed_bytes(plan_data, manifest_bytes))).decode() + "\n"


def trusted_key(verify_key=None):
    """The public key path of the trust policy: --verify-key, else $WRN_DEPLOY_VERIFY_KEY, else None."""
    key = verify_key or os.environ.get(KEY_ENV) or None
    if key is not None:
        _load_public_key(key)  # an unreadable key is an error now, not after the images load
    return key


def verify_signature(plan, public_key_path, plan_data: bytes, manifest_bytes: bytes | None) -> None:
    """The signature beside ``plan`` must verify over exactly ``plan_data`` and ``manifest_bytes``."""
    from cryptography.exceptions import InvalidSignature

    key = _load_public_key(public_key_path)
    sig_path = signature_path(plan)
    if not sig_path.exists() or manifest_bytes is None:
        raise UserError(f"{plan} is not signed (no {sig_path.name} or no manifest), and the trust policy "
                        f"({public_key_path}) requires a signature; refusing to load it")
    try:
        key.verify(base64.b64decode(sig_path.read_bytes().strip(), validate=True), _signed_bytes(plan_data, manifest_bytes))
    except (InvalidSignature, ValueError):
        raise UserError(f"the signature of {plan} does not verify with {public_key_path}; refusing to load it") from None


def generate_keypair(private_path, public_path) -> None:
    """A new Ed25519 key pair; an existing key is never replaced and the private key is 0600."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from wrn_deploy.fileio import check_output, same_file, write_text

    if Path(private_path).resolve() == Path(public_path).resolve() or same_file(private_path, public_path):
        raise UserError("the private and the public key need two different paths")
    for path in (private_path, public_path):
        if Path(path).exists() or Path(path).is_symlink():
            raise UserError(f"{path} exists; wrn-deploy never replaces a key (move it away first)")
        check_output(path)
    key = Ed25519PrivateKey.generate()
    write_text(private_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode(), mode=0o600, replace=False)
    write_text(public_path, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
               replace=False)
