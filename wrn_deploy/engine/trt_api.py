"""Importing TensorRT, and the list of every TensorRT name this project touches.

``USED`` is checked by a test against the compiled bindings of TensorRT 10.x and 11.x (their
wheels hold every Python-visible name as a string), so a name that 11.x removed, such as
``int8_calibrator`` or ``EXPLICIT_BATCH``, cannot slip in unnoticed.
"""

from wrn_deploy.errors import UserError

USED = (
    # module level
    "ILogger", "Logger", "Builder", "Runtime", "OnnxParser", "NetworkDefinitionCreationFlag",
    "STRONGLY_TYPED", "BuilderFlag", "VERSION_COMPATIBLE", "MemoryPoolType", "WORKSPACE",
    "HardwareCompatibilityLevel", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY", "TensorIOMode", "INPUT",
    "DataType", "FLOAT", "HALF", "INT8", "INT32", "INT64", "BOOL", "BF16", "WARNING", "__version__",
    # Builder / config / network / parser
    "create_network", "create_builder_config", "create_optimization_profile", "set_shape",
    "add_optimization_profile", "set_memory_pool_limit", "set_flag", "hardware_compatibility_level",
    "create_timing_cache", "set_timing_cache", "get_timing_cache", "serialize", "builder_optimization_level",
    "build_serialized_network", "parse_from_file", "num_errors", "get_error", "num_inputs", "get_input",
    "name", "shape",
    # Runtime / engine / context
    "deserialize_cuda_engine", "engine_host_code_allowed", "create_execution_context", "num_io_tensors",
    "get_tensor_name", "get_tensor_mode", "get_tensor_dtype", "get_tensor_shape",
    "get_tensor_profile_shape", "set_input_shape", "set_tensor_address", "execute_async_v3",
)


def import_tensorrt():
    """The ``tensorrt`` module, or a one-line error naming what to install."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise UserError(f"TensorRT is not installed or cannot load ({e}); install the 'trt' extra "
                        "(pip install 'wrn-deploy[trt]' from NVIDIA's index) on a machine with an NVIDIA GPU") from None
    return trt


def require_cuda():
    import torch

    if not torch.cuda.is_available():
        raise UserError("TensorRT needs an NVIDIA GPU with a working CUDA driver; PyTorch sees none here")
    return torch


def major(version: str) -> int:
    return int(str(version).split(".")[0])
