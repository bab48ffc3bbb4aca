"""The list of every TensorRT name this project touches.

``USED`` is checked by a test against the compiled bindings of TensorRT 10.x and 11.x (their
wheels hold every Python-visible name as a string), so a name that 11.x removed, such as
``int8_calibrator`` or ``EXPLICIT_BATCH``, cannot slip in unnoticed. Importing TensorRT itself
(``import_tensorrt``, ``require_cuda``) lives in ``runners/trt_runner.py``, below this package.
"""

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


def major(version: str) -> int:
    return int(str(version).split(".")[0])
