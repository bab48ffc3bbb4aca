# wrn-deploy on a GPU: NVIDIA's TensorRT image (TensorRT, CUDA, cuDNN) plus the package with its
# gpu (onnxruntime-gpu), serve (tritonclient, a Python-backend tritonserver) and dev (pytest) extras.
# TensorRT itself comes from the base image, so the trt extra is already satisfied.
#
#   docker build -t wrn-deploy .
#   docker run --gpus all --rm wrn-deploy                   # the gpu- and trt-marked tests
#   docker run --gpus all --rm -v "$PWD/runs:/runs" wrn-deploy wrn-deploy build /runs/m.onnx -o /runs/m.plan
#   docker run --gpus all --rm -v "$PWD/runs:/runs" wrn-deploy wrn-classify --model /runs/m.plan /runs/cat.png
#
# Not built or run by this project's CI (no Docker engine there); see README "Docker".
FROM nvcr.io/nvidia/tensorrt:25.10-py3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /opt/wrn-deploy
COPY pyproject.toml README.md ./
COPY wrn_deploy ./wrn_deploy
COPY models ./models
COPY tests ./tests
COPY scripts ./scripts

# The project's own source; its dependencies are pinned by range in pyproject.toml. One ONNX
# Runtime: the gpu extra's onnxruntime-gpu (the core depends on none; never add the cpu extra here,
# both wheels install the same module; tests/test_environments.py checks this file).
# hadolint ignore=DL3013
RUN python -m pip install ".[trt,gpu,serve,dev]" \
 && python -c "import tensorrt, wrn_deploy; print('TensorRT', tensorrt.__version__)"

# The C++ program (cpp/) with both backends: TensorRT from this image (CMake stops if it is not
# found), ONNX Runtime's library from the gpu extra's onnxruntime-gpu wheel and its headers from
# Debian's libonnxruntime-dev (fetched and checked by cpp/tools/fetch_deps.py).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libpng-dev libjpeg-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
COPY cpp ./cpp
RUN python cpp/tools/fetch_deps.py --cache build/cpp-deps.cmake \
 && cmake -C build/cpp-deps.cmake -S cpp -B build/cpp -DCMAKE_BUILD_TYPE=Release -DWRN_REQUIRE_TENSORRT=ON \
 && cmake --build build/cpp -j "$(nproc)" \
 && ln -s /opt/wrn-deploy/build/cpp/wrn-classify /usr/local/bin/wrn-classify

RUN useradd --create-home --uid 1000 wrn && chown -R 1000 /opt/wrn-deploy
USER 1000
CMD ["python", "-m", "pytest", "-q", "-m", "gpu or trt", "tests"]
