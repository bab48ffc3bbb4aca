"""Runners: one interface over PyTorch, ONNX Runtime, OpenVINO and TensorRT, and ``runner_for``, the one way
to run any artifact.

A runner is cheap to create; it loads its model and takes device memory in ``activate()`` and gives
them back in ``deactivate()``; ``with runner:`` does both. The contract is in ``base.Runner``.
"""

from pathlib import Path

from wrn_deploy.runners.base import Runner, TensorMeta

__all__ = ["Runner", "TensorMeta", "runner_for", "RUNTIMES"]

RUNTIMES = ("onnxruntime", "openvino")   # what runs an ONNX file


def runner_for(artifact, *, provider: str = "cpu", device: str = "cpu", precision: str = "fp32",
               threads: int | None = None, verify_key=None, allow_host_code: bool = False, warn=print,
               allow_unverified: bool = False, runtime: str = "onnxruntime", precision_hint: str = "f32") -> Runner:
    """A runner for ``artifact``: a checkpoint, ONNX or plan path; a PyTorch module taking images in
    [0, 1]; or a callable that returns such a module.

    ``runtime`` says what runs an ONNX file: ``onnxruntime`` (``provider``: its execution provider)
    or ``openvino`` (``precision_hint``: ``f32`` or ``bf16``); ``threads`` applies to both. ``device`` and
    ``precision`` to PyTorch, ``verify_key``, ``allow_host_code`` and ``allow_unverified`` (load a
    plan without a matching manifest) to TensorRT plans.
    Nothing is loaded until the runner is activated.
    """
    if not isinstance(artifact, (str, Path)):
        from wrn_deploy.runners.torch_runner import TorchRunner

        return TorchRunner(artifact, device, precision)
    from wrn_deploy.card import artifact_kind

    if runtime not in RUNTIMES:
        from wrn_deploy.errors import UserError

        raise UserError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    kind = artifact_kind(artifact)
    if runtime == "openvino" and kind != "onnx":
        from wrn_deploy.errors import UserError

        raise UserError(f"{artifact}: OpenVINO runs ONNX files, not a {kind}")
    if kind == "checkpoint":
        from wrn_deploy.runners.torch_runner import TorchRunner

        return TorchRunner(artifact, device, precision)
    if kind == "onnx" and runtime == "openvino":
        from wrn_deploy.runners.openvino_runner import OpenVinoRunner

        return OpenVinoRunner(artifact, precision_hint, threads)
    if kind == "onnx":
        from wrn_deploy.runners.ort_runner import OrtRunner

        return OrtRunner(artifact, provider, threads)
    from wrn_deploy.runners.trt_runner import TrtRunner

    return TrtRunner(artifact, verify_key, allow_host_code, warn, allow_unverified=allow_unverified)
