"""``wrn-deploy pipeline``: every step from data to deployable artifacts, cached by its inputs, and
the parity report of the whole grid (PyTorch / ONNX Runtime / TensorRT / Triton x FP32 / FP16 / INT8).

- ``records``: what each step consumed and produced, and when a step can be skipped;
- ``steps``: the steps themselves, thin calls into export, quantize, build, eval, serve, bench;
- ``flow``: which steps run in which order, and what happens when one fails;
- ``report``: report.json into report.md and report.png (also ``wrn-deploy report``).
"""
