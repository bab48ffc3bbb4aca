"""TensorRT engines: build (strongly typed, precision from the ONNX), manifest, signing.
The manifest format and the trust policy live in ``plan_trust.py``, loading in ``runners/trt_runner.py``;
this package and that runner are the only places that import ``tensorrt``."""
