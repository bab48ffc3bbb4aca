"""TensorRT engines: build (strongly typed, precision from the ONNX), manifest, signing, loading.
This package and ``runners.trt`` are the only places that import ``tensorrt``."""
