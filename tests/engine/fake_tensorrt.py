"""A stand-in for the ``tensorrt`` module with the TensorRT 11.x Python surface, for CPU tests.

It is strict where TensorRT 11 is strict: networks must be created STRONGLY_TYPED, there is no
FP16/INT8 builder flag, no INT8 calibrator, no EXPLICIT_BATCH, and objects refuse attributes the
real ones lack (``__slots__``). Its "plan" holds the ONNX bytes, and its execution context runs them
in ONNX Runtime on CPU memory addressed by raw pointers, so the runner's buffer handling is real.
Passing these tests is NOT TensorRT verification: nothing here is TensorRT's parser or kernels.
"""

import ctypes
import enum
import json
import types

import numpy as np

__version__ = "11.4.0.106"
MAGIC = b"FAKETRT\0"


class ILogger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = Severity

    def __init__(self):
        pass

    def log(self, severity, msg):  # overridden by users
        pass


class Logger(ILogger):
    def __init__(self, min_severity=ILogger.WARNING):
        super().__init__()


class NetworkDefinitionCreationFlag(enum.IntEnum):
    STRONGLY_TYPED = 0  # the only member left in 11.x besides the plugin preferences
    PREFER_AOT_PYTHON_PLUGINS = 1
    PREFER_JIT_PYTHON_PLUGINS = 2


class BuilderFlag(enum.IntEnum):  # no FP16 / INT8 / BF16 / FP8: weak typing is gone in 11.x
    DEBUG = 0
    GPU_FALLBACK = 1
    REFIT = 2
    DISABLE_TIMING_CACHE = 3
    TF32 = 4
    VERSION_COMPATIBLE = 5
    EXCLUDE_LEAN_RUNTIME = 6


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class HardwareCompatibilityLevel(enum.IntEnum):
    NONE = 0
    AMPERE_PLUS = 1
    SAME_COMPUTE_CAPABILITY = 2


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    BF16 = 7
    INT64 = 8


_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16}
_ONNX = {1: DataType.FLOAT, 10: DataType.HALF}


class _Tensor:
    __slots__ = ("name", "shape", "dtype")

    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, shape, dtype


class INetworkDefinition:
    __slots__ = ("flags", "onnx", "inputs", "outputs")

    def __init__(self, flags):
        self.flags, self.onnx, self.inputs, self.outputs = flags, None, [], []

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, i):
        return self.inputs[i]


class OnnxParser:
    __slots__ = ("network", "errors")

    def __init__(self, network, logger):
        self.network, self.errors = network, []

    def parse_from_file(self, path):
        import onnx

        try:
            model = onnx.load(path)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"cannot read {path}: {e}")
            return False
        def tensors(values):
            out = []
            for v in values:
                t = v.type.tensor_type
                dims = tuple(d.dim_value if d.dim_value else -1 for d in t.shape.dim)
                out.append(_Tensor(v.name, dims, _ONNX[t.elem_type]))
            return out
        self.network.onnx = model.SerializeToString()
        self.network.inputs, self.network.outputs = tensors(model.graph.input), tensors(model.graph.output)
        return True

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]


class IOptimizationProfile:
    __slots__ = ("shapes",)

    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, min, opt, max):  # noqa: A002 - TensorRT's parameter names
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class ITimingCache:
    __slots__ = ("blob",)

    def __init__(self, blob):
        self.blob = bytes(blob) or b"timing-cache-v1"

    def serialize(self):
        return self.blob


class IBuilderConfig:
    __slots__ = ("pools", "profiles", "flags", "hardware_compatibility_level", "builder_optimization_level", "cache")

    def __init__(self):
        self.pools, self.profiles, self.flags, self.cache = {}, [], set(), None
        self.hardware_compatibility_level = HardwareCompatibilityLevel.NONE
        self.builder_optimization_level = 3

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_flag(self, flag):
        self.flags.add(BuilderFlag(flag))

    def create_timing_cache(self, blob):
        return ITimingCache(blob)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache
        return True

    def get_timing_cache(self):
        return self.cache


class Builder:
    __slots__ = ("logger",)

    def __init__(self, logger):
        self.logger = logger

    def create_network(self, flags=0):
        return INetworkDefinition(flags)

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def build_serialized_network(self, network, config):
        if not network.flags & (1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED):
            self.logger.log(ILogger.ERROR, "network is not strongly typed")
            return None
        (profile,) = config.profiles
        header = {"profile": {k: v for k, v in profile.shapes.items()},
                  "inputs": [[t.name, t.dtype.value] for t in network.inputs],
                  "outputs": [[t.name, t.dtype.value, list(t.shape)] for t in network.outputs],
                  "flags": sorted(f.name for f in config.flags),
                  "hw": config.hardware_compatibility_level.name}
        head = json.dumps(header).encode()
        return MAGIC + len(head).to_bytes(4, "little") + head + network.onnx


class ICudaEngine:
    __slots__ = ("header", "onnx")

    def __init__(self, header, onnx):
        self.header, self.onnx = header, onnx

    @property
    def num_io_tensors(self):
        return len(self.header["inputs"]) + len(self.header["outputs"])

    def _io(self):
        return [(n, TensorIOMode.INPUT, d) for n, d in self.header["inputs"]] + \
               [(n, TensorIOMode.OUTPUT, d) for n, d, _ in self.header["outputs"]]

    def get_tensor_name(self, i):
        return self._io()[i][0]

    def get_tensor_mode(self, name):
        return next(m for n, m, _ in self._io() if n == name)

    def get_tensor_dtype(self, name):
        return DataType(next(d for n, _, d in self._io() if n == name))

    def get_tensor_profile_shape(self, name, profile_index):
        return [list(s) for s in self.header["profile"][name]]

    def get_tensor_shape(self, name):  # the engine's view: -1 where the profile leaves a dimension open
        if name in self.header["profile"]:
            lo, _, hi = self.header["profile"][name]
            return tuple(a if a == b else -1 for a, b in zip(lo, hi))
        return tuple(next(s for n, _, s in self.header["outputs"] if n == name))

    def create_execution_context(self):
        return IExecutionContext(self)


class IExecutionContext:
    __slots__ = ("engine", "shapes", "addresses", "session")

    def __init__(self, engine):
        import onnxruntime as ort

        self.engine, self.shapes, self.addresses = engine, {}, {}
        self.session = ort.InferenceSession(engine.onnx, providers=["CPUExecutionProvider"])

    def set_input_shape(self, name, shape):
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self.shapes:
            return self.shapes[name]
        batch = next(iter(self.shapes.values()))[0]
        _, _, shape = next(o for o in self.engine.header["outputs"] if o[0] == name)
        return (batch, *shape[1:])

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def _view(self, name):
        shape = self.get_tensor_shape(name)
        dtype = np.dtype(_NP[self.engine.get_tensor_dtype(name)])
        size = int(np.prod(shape)) * dtype.itemsize
        buf = (ctypes.c_char * size).from_address(self.addresses[name])
        return np.frombuffer(buf, dtype=dtype).reshape(shape)

    def execute_async_v3(self, stream_handle):
        feeds = {n: self._view(n).copy() for n, _ in self.engine.header["inputs"]}
        for (name, _, _), value in zip(self.engine.header["outputs"], self.session.run(None, feeds)):
            self._view(name)[...] = value
        return True


class Runtime:
    __slots__ = ("logger", "engine_host_code_allowed")

    def __init__(self, logger):
        self.logger, self.engine_host_code_allowed = logger, False

    def deserialize_cuda_engine(self, blob):
        blob = bytes(blob)
        if not blob.startswith(MAGIC):
            self.logger.log(ILogger.ERROR, "Error Code 4: Internal Error (Engine deserialization failed.)")
            return None
        n = int.from_bytes(blob[8:12], "little")
        return ICudaEngine(json.loads(blob[12:12 + n]), blob[12 + n:])


def as_module() -> types.ModuleType:
    """This file's public names as a module object to put in sys.modules['tensorrt']."""
    mod = types.ModuleType("tensorrt")
    for k, v in globals().items():
        if not k.startswith("_") and k not in ("as_module", "ctypes", "enum", "json", "types", "np"):
            setattr(mod, k, v)
    mod.__version__ = __version__
    return mod
