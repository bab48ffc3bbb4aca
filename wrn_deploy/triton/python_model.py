"""The Triton Python-backend model that serves any wrn-deploy artifact through its runner.

``wrn-deploy triton --backend python`` copies this file into ``REPO/NAME/1/model.py`` beside the
artifact. Triton's Python backend imports it in its stub process (which finds packages through the
``python3`` first on PATH, so wrn-deploy and its runtime must be installed there). Requests that the
dynamic batcher groups run as one batch, and each answer goes back to its own request.
"""

import json
from pathlib import Path

import numpy as np

ARTIFACTS = ("model.onnx", "model.plan", "model.safetensors")


class TritonPythonModel:
    def initialize(self, args):
        from wrn_deploy.runners import runner_for

        folder = Path(args["model_repository"]) / args["model_version"]
        artifact = next(folder / n for n in ARTIFACTS if (folder / n).exists())
        config = json.loads(args["model_config"])
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]
        self.out_dtype = np.float16 if config["output"][0]["data_type"] == "TYPE_FP16" else np.float32
        gpu = args.get("model_instance_kind") == "GPU"
        device = f"cuda:{args.get('model_instance_device_id', 0)}" if gpu else "cpu"
        if artifact.suffix != ".onnx":  # PyTorch runs it (a checkpoint), or holds its GPU memory (a plan)
            import torch

            torch.set_num_threads(1)  # each instance is one of several; Triton scales by instances
        self.runner = runner_for(artifact, provider="cuda" if gpu else "cpu", device=device, threads=1)
        self.runner.activate()

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils

        from wrn_deploy.data.preprocess import unit_float

        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        sizes = [len(a) for a in arrays]
        try:
            batch = np.concatenate(arrays)
            # the runner takes [0, 1]; a raw-pixel input's bytes go back to 0-255 exactly inside it
            batch = unit_float(batch) if batch.dtype == np.uint8 else batch.astype(np.float32)
            logits = self.runner.infer(batch).astype(self.out_dtype)
        except Exception as e:  # noqa: BLE001 - every request gets the error, the server stays up
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e))) for _ in requests]
        parts = np.split(logits, np.cumsum(sizes)[:-1])
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, p)]) for p in parts]

    def finalize(self):
        self.runner.deactivate()
