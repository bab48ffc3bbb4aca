"""ONNX Runtime: CPU, CUDA, or its TensorRT execution provider where onnxruntime-gpu has them.
The model is a path, the serialized bytes, an ``onnx.ModelProto``, or a callable giving one."""

from pathlib import Path

import numpy as np

from wrn_deploy.errors import UserError
from wrn_deploy.limits import ORT_SPIN
from wrn_deploy.runners.base import Runner, TensorMeta, as_input, resolve

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
          "tensor(uint8)": "uint8"}


def qdq_with_fp16(model) -> bool:
    """Whether the ONNX model (a path or serialized bytes) has DequantizeLinear nodes and FP16 tensors."""
    import onnx

    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model),
                                                                                      load_external_data=False)
    except Exception:  # noqa: BLE001 - unreadable: ONNX Runtime's own load gives the message
        return False
    graph = proto.graph
    return (any(n.op_type == "DequantizeLinear" for n in graph.node)
            and any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer))


class OrtRunner(Runner):
    """``threads``: intra-op threads (None: ONNX Runtime's choice, one a physical core). ``spin``:
    whether idle threads spin-wait for work (None: ``limits.ORT_SPIN``, chosen from measurements in
    docs/performance.md); spinning burns cores another process on the machine could use."""

    def __init__(self, source, provider: str = "cpu", threads: int | None = None, spin: bool | None = None):
        super().__init__()
        if provider not in PROVIDERS:
            raise UserError(f"provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
        self.source, self.provider, self.threads = source, provider, threads
        self.spin = ORT_SPIN if spin is None else spin
        self.name = f"onnxruntime-{provider}"
        self.session = None

    def check(self) -> None:
        import onnxruntime as ort

        if PROVIDERS[self.provider] not in ort.get_available_providers():
            raise UserError(f"ONNX Runtime here has no {PROVIDERS[self.provider]}; install the 'gpu' extra "
                            "(onnxruntime-gpu) on a machine with an NVIDIA GPU")
        if isinstance(self.source, (str, Path)) and not Path(self.source).is_file():
            raise UserError(f"ONNX file {self.source} does not exist")

    def _activate(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        for pool in ("intra_op", "inter_op"):
            opts.add_session_config_entry(f"session.{pool}.allow_spinning", "1" if self.spin else "0")
        wanted = PROVIDERS[self.provider]
        providers = [wanted] + (["CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [])
        model = resolve(self.source)
        if hasattr(model, "SerializeToString"):  # an onnx.ModelProto
            model = model.SerializeToString()
        if self.provider == "cpu" and qdq_with_fp16(model):
            # ONNX Runtime's CPU graph optimizer (its basic level already) rewrites Q/DQ graphs with an
            # FP16 remainder, the TensorRT form's default, into something else: a WRN-50-2 trained at
            # 64 pixels agreed with FP32 on 32% of its images optimized and on 95% run as written
            # (docs/int8.md). On a CPU that form only stands in for TensorRT, so it runs as written.
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self.session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                                providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises several types for unreadable models
            raise UserError(f"ONNX Runtime cannot load {self._where()}: {str(e).splitlines()[0]}") from None
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.dtype = np.dtype(_TYPES.get(inp.type, "float32"))

    def _where(self) -> str:
        return str(self.source) if isinstance(self.source, (str, Path)) else "the model"

    def _deactivate(self) -> None:
        self.session = None

    def _infer(self, images: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run(None, {self.input: as_input(images, self.dtype)})[0]
        except Exception as e:  # noqa: BLE001 - ORT's own exception types (InvalidArgument, Fail, ...)
            raise UserError(f"ONNX Runtime could not run {self._where()} on images of shape {tuple(images.shape)}: "
                            f"{str(e).splitlines()[0]}") from None
        return out.astype(np.float32)

    @staticmethod
    def _meta(args) -> list:
        return [TensorMeta(a.name, _TYPES.get(a.type, a.type), tuple(d if isinstance(d, int) else -1 for d in a.shape))
                for a in args]

    def _inputs(self) -> list:
        return self._meta(self.session.get_inputs())

    def _outputs(self) -> list:
        return self._meta(self.session.get_outputs())

    def _batch_range(self) -> tuple:
        first = self.session.get_inputs()[0].shape[0]
        return (first, first) if isinstance(first, int) else (1, None)
