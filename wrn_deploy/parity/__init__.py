"""Paired comparison of a candidate (engine, ONNX, checkpoint) against the PyTorch FP32 reference."""
