"""INT8: calibration sets and manifests, explicit Q/DQ ONNX for TensorRT or ONNX Runtime CPU, and the
accuracy guard that leaves the most sensitive layers unquantized when INT8 costs too much."""
