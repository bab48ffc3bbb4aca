"""The engine manifest (``model.plan.json``) and the checks made before TensorRT reads a plan.

A plan is executable code: deserializing an untrusted engine runs untrusted native code, and
TensorRT's own validity check does not detect tampering. So a plan is loaded only after its
sha256 matches the manifest (and, with a key, after the Ed25519 signature over plan and manifest
verifies), and only when the TensorRT version and GPU match what built it.
"""

import base64
import json
from pathlib import Path

from wrn_deploy.card import manifest_path
from wrn_deploy.errors import UserError
from wrn_deploy.fileio import sha256_file

__all__ = ["manifest_path", "read_manifest", "check_integrity", "check_compatible", "sign", "verify_signature"]

FORMAT = "wrn-deploy.engine/1"


def signature_path(plan) -> Path:
    return Path(str(plan) + ".sig")


def read_manifest(plan) -> dict | None:
    path = manifest_path(plan)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON") from None
    if data.get("format") != FORMAT:
        raise UserError(f"{path} is not a wrn-deploy engine manifest")
    return data


def check_integrity(plan, manifest: dict, data: bytes) -> None:
    """``data`` (the plan's bytes, read once) must be exactly those the manifest describes."""
    import hashlib

    if len(data) != manifest["plan_bytes"]:
        raise UserError(f"{plan} is {len(data)} bytes but its manifest says {manifest['plan_bytes']}: "
                        "truncated or replaced; refusing to load it")
    if hashlib.sha256(data).hexdigest() != manifest["plan_sha256"]:
        raise UserError(f"{plan} does not match the sha256 in its manifest: modified; refusing to load it")


def check_compatible(manifest: dict, trt_version: str, capability: tuple, gpu: str) -> None:
    """One sentence saying what the engine needs and what this machine has, instead of TensorRT's None."""
    built = manifest["tensorrt_version"]
    cc = tuple(manifest["compute_capability"])
    vc = manifest["build"].get("version_compatible", False)
    hw = manifest["build"].get("hardware_compatibility", "none")
    same_trt = built == trt_version or (vc and _vc_runs(built, trt_version))
    same_gpu = cc == tuple(capability) or (hw == "ampere_plus" and capability >= (8, 0)) or (
        hw == "same_compute_capability" and tuple(capability) == cc)
    if same_trt and same_gpu:
        return
    raise UserError(
        f"engine built with TensorRT {built} on sm_{cc[0]}{cc[1]} ({manifest['gpu']}); this machine runs "
        f"TensorRT {trt_version} on sm_{capability[0]}{capability[1]} ({gpu}): rebuild it here, or build "
        "with --version-compatible / --hw-compat ampere_plus")


def _vc_runs(built: str, running: str) -> bool:
    """Version-compatible plans run on the same major at the same or a later minor, and TensorRT 10
    plans on TensorRT 11 (TensorRT's engine compatibility notes)."""
    b, r = [int(x) for x in built.split(".")[:2]], [int(x) for x in running.split(".")[:2]]
    return (b[0] == r[0] and r[1] >= b[1]) or (b[0] == 10 and r[0] == 11)


# -- signing -----------------------------------------------------------------------------------------
def _signed_bytes(plan, manifest_bytes: bytes) -> bytes:
    return sha256_file(plan).encode() + b"\n" + manifest_bytes


def sign(plan, private_key_path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(private_key_path).read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the Ed25519 private key {private_key_path} ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{private_key_path} is not an Ed25519 private key")
    sig = key.sign(_signed_bytes(plan, manifest_path(plan).read_bytes()))
    from wrn_deploy.fileio import write_text

    write_text(signature_path(plan), base64.b64encode(sig).decode() + "\n")
    return signature_path(plan)


def verify_signature(plan, public_key_path) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(public_key_path).read_bytes())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the Ed25519 public key {public_key_path} ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{public_key_path} is not an Ed25519 public key")
    sig_path, man_path = signature_path(plan), manifest_path(plan)
    if not sig_path.exists() or not man_path.exists():
        raise UserError(f"{plan} has no signature ({sig_path.name}) or manifest; refusing to load it")
    try:
        key.verify(base64.b64decode(sig_path.read_text()), _signed_bytes(plan, man_path.read_bytes()))
    except (InvalidSignature, ValueError):
        raise UserError(f"the signature of {plan} does not verify with {public_key_path}; refusing to load it") from None


def generate_keypair(private_path, public_path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from wrn_deploy.fileio import write_text

    key = Ed25519PrivateKey.generate()
    write_text(private_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode())
    write_text(public_path, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode())
