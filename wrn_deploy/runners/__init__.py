"""Runners: one interface over PyTorch, ONNX Runtime and TensorRT.

A runner is cheap to create; it loads its model and takes device memory in ``activate()`` and gives
them back in ``deactivate()``; ``with runner:`` does both. ``infer`` takes float images in [0, 1]
(N,3,H,W, a CPU tensor) and returns float32 logits as a NumPy array.
"""

from wrn_deploy.runners.base import Runner

__all__ = ["Runner"]
