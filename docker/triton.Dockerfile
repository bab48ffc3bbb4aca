# NVIDIA's Triton Inference Server image, serving a repository that `wrn-deploy triton` generated
# with the native backends (tensorrt_plan for a .plan, onnxruntime_onnx for an .onnx).
#
#   wrn-deploy triton runs/m.plan -o model_repository --kind gpu
#   docker build -f docker/triton.Dockerfile -t wrn-triton .
#   docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 wrn-triton
#
# A plan runs only on the TensorRT version that built it (or a later one, if built with
# --version-compatible): build it with this image's TensorRT (the Dockerfile at the top level uses
# the same 25.10 release). Not built or run by this project's CI (no Docker engine there).
FROM nvcr.io/nvidia/tritonserver:25.10-py3

ARG REPOSITORY=model_repository
COPY ${REPOSITORY} /models

EXPOSE 8000 8001 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["curl", "--fail", "--silent", "http://localhost:8000/v2/health/ready"]
# triton-server, the unprivileged user NVIDIA's image provides
USER 1000
ENTRYPOINT ["tritonserver", "--model-repository=/models", "--exit-on-error=true", "--strict-readiness=true"]
