# FindTensorRT: TensorRT ships no CMake config. Finds NvInferRuntime.h and a runtime library, the
# full one (libnvinfer) or the lean one (libnvinfer_lean: the runtime API only, enough to run plans
# built with --version-compatible; NVIDIA's tensorrt-lean wheels on PyPI ship it), and defines
# TensorRT::nvinfer for whichever was found.
#
# Where it looks, in order: TensorRT_ROOT (variable or environment), the tensorrt_libs and
# tensorrt_lean_libs folders of the Python that Python3_EXECUTABLE names (or python3 on PATH: the
# pip wheels ship versioned .so files only, no headers), and the system paths (NVIDIA's containers
# install TensorRT under /usr/include/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu).
#
# TensorRT_RUNTIME: auto (default: full if found, else lean), full or lean.
# Sets TensorRT_FOUND, TensorRT_INCLUDE_DIR, TensorRT_LIBRARY, TensorRT_LEAN (ON for the lean
# library) and TensorRT_WHY_NOT (what was missing, one line), and reports both halves in a STATUS line.
set(TensorRT_RUNTIME "auto" CACHE STRING "TensorRT runtime library to link: auto, full or lean")
set_property(CACHE TensorRT_RUNTIME PROPERTY STRINGS auto full lean)

set(_trt_roots ${TensorRT_ROOT} $ENV{TensorRT_ROOT})
set(_trt_python "${Python3_EXECUTABLE}")
if(NOT _trt_python)
  find_program(_trt_python NAMES python3 python)
endif()
if(_trt_python)
  # The wheels' library folders, found without importing them (their __init__ loads the libraries).
  execute_process(
    COMMAND "${_trt_python}" -c "import importlib.util as u\nfor n in ('tensorrt_libs', 'tensorrt_lean_libs'):\n    s = u.find_spec(n)\n    print(list(s.submodule_search_locations)[0] if s else '')"
    OUTPUT_VARIABLE _trt_wheel_dirs OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  string(REPLACE "\n" ";" _trt_wheel_dirs "${_trt_wheel_dirs}")
endif()
set(_trt_suffixes lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu)

find_path(TensorRT_INCLUDE_DIR NvInferRuntime.h
  HINTS ${_trt_roots}
  PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu)

# The wheels ship only libnvinfer.so.N / libnvinfer_lean.so.N (no unversioned name): ask for those too.
if(NOT TensorRT_RUNTIME STREQUAL "lean")
  find_library(TensorRT_FULL_LIBRARY NAMES nvinfer libnvinfer.so.11 libnvinfer.so.10
    HINTS ${_trt_roots} ${_trt_wheel_dirs} PATH_SUFFIXES ${_trt_suffixes})
endif()
if(NOT TensorRT_RUNTIME STREQUAL "full")
  find_library(TensorRT_LEAN_LIBRARY NAMES nvinfer_lean libnvinfer_lean.so.11 libnvinfer_lean.so.10
    HINTS ${_trt_roots} ${_trt_wheel_dirs} PATH_SUFFIXES ${_trt_suffixes})
endif()

if(NOT TensorRT_LIBRARY)
  if(TensorRT_FULL_LIBRARY AND NOT TensorRT_RUNTIME STREQUAL "lean")
    set(TensorRT_LIBRARY "${TensorRT_FULL_LIBRARY}")
  elseif(TensorRT_LEAN_LIBRARY AND NOT TensorRT_RUNTIME STREQUAL "full")
    set(TensorRT_LIBRARY "${TensorRT_LEAN_LIBRARY}")
  endif()
endif()
set(TensorRT_LEAN OFF)
if(TensorRT_LIBRARY MATCHES "nvinfer_lean")
  set(TensorRT_LEAN ON)
endif()

# One line that says what was and was not found, whatever the outcome.
if(TensorRT_INCLUDE_DIR)
  set(_trt_header "header ${TensorRT_INCLUDE_DIR}/NvInferRuntime.h")
else()
  set(_trt_header "header NvInferRuntime.h not found")
endif()
if(TensorRT_LIBRARY)
  set(_trt_library "library ${TensorRT_LIBRARY}")
  if(TensorRT_LEAN)
    string(APPEND _trt_library " (lean runtime: runs --version-compatible plans)")
  endif()
else()
  set(_trt_library "no ${TensorRT_RUNTIME} runtime library (libnvinfer or libnvinfer_lean) found")
endif()
set(_trt_looked "TensorRT_ROOT=${_trt_roots}")
if(NOT _trt_roots)
  set(_trt_looked "TensorRT_ROOT not set")
endif()
message(STATUS "TensorRT: ${_trt_header}; ${_trt_library} (searched: ${_trt_looked}, pip wheels of ${_trt_python}, system paths)")

set(TensorRT_WHY_NOT "")
if(NOT TensorRT_INCLUDE_DIR AND NOT TensorRT_LIBRARY)
  set(TensorRT_WHY_NOT "neither NvInferRuntime.h nor a TensorRT runtime library was found; set TensorRT_ROOT or pip install tensorrt-lean")
elseif(NOT TensorRT_INCLUDE_DIR)
  set(TensorRT_WHY_NOT "${TensorRT_LIBRARY} was found but not NvInferRuntime.h (the pip wheels ship no headers); point TensorRT_ROOT at a folder with include/")
elseif(NOT TensorRT_LIBRARY)
  set(TensorRT_WHY_NOT "NvInferRuntime.h was found in ${TensorRT_INCLUDE_DIR} but no ${TensorRT_RUNTIME} runtime library; set TensorRT_ROOT or pip install tensorrt-lean")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorRT REQUIRED_VARS TensorRT_INCLUDE_DIR TensorRT_LIBRARY)
if(TensorRT_FOUND AND NOT TARGET TensorRT::nvinfer)
  add_library(TensorRT::nvinfer UNKNOWN IMPORTED)
  set_target_properties(TensorRT::nvinfer PROPERTIES IMPORTED_LOCATION "${TensorRT_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
endif()
mark_as_advanced(TensorRT_INCLUDE_DIR TensorRT_LIBRARY TensorRT_FULL_LIBRARY TensorRT_LEAN_LIBRARY)
