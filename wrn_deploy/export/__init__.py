"""Export: graph preparation (dropout out, BatchNorm folded), ONNX FP32/FP16, verification, report."""
