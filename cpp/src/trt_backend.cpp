// The TensorRT backend (TensorRT 10 / 11 C++ API). Compiled only where CMake finds TensorRT's
// headers, libnvinfer and the CUDA runtime; it has not been compiled against real libraries or run
// on this project's machines (no TensorRT there), only syntax-checked against NVIDIA's public
// headers. The plan bytes it receives were read once and checked against the manifest's size and
// SHA-256 by check_plan (wrn::Classifier::open); exactly those bytes are deserialized.
#include <cuda_runtime_api.h>

#include <NvInferRuntime.h>

#include <cstdio>
#include <string>

#include "backends.hpp"

namespace wrn {
namespace {

void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")");
}

// Keeps TensorRT's errors (they explain a refused plan) and prints its warnings to stderr.
class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, char const* msg) noexcept override {
        if (severity <= Severity::kERROR && msg) last_error_ = first_line(msg);
        else if (severity == Severity::kWARNING && msg) std::fprintf(stderr, "TensorRT: %s\n", msg);
    }
    std::string last_error() const { return last_error_.empty() ? "no message from TensorRT" : last_error_; }

private:
    std::string last_error_;
};

// A device buffer and a stream, released on every path (a constructor that throws included).
struct DeviceBuffer {
    void* ptr = nullptr;
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);
    }
};

struct Stream {
    cudaStream_t handle = nullptr;
    ~Stream() {
        if (handle) {
            cudaStreamSynchronize(handle);
            cudaStreamDestroy(handle);
        }
    }
};

int version_part(const std::string& text, int index) {
    int part = 0, value = 0;
    bool digits = false;
    for (char c : text + ".") {
        if (c >= '0' && c <= '9') {
            value = value * 10 + (c - '0');
            digits = true;
            if (value > 100000) return -1;
        } else if (c == '.') {
            if (!digits) return -1;
            if (part == index) return value;
            ++part;
            value = 0;
            digits = false;
        } else {
            return -1;
        }
    }
    return -1;
}

// wrn_deploy.plan_trust.check_compatible: the same TensorRT (or a version-compatible plan on a
// later minor / TensorRT 10 plan on 11) and the same GPU architecture (or Ampere-plus plans on sm_80+).
void check_compatible(const PlanManifest& m, const std::string& path) {
    const int lib = getInferLibVersion();
    const int major = lib / 10000, minor = (lib / 100) % 100, patch = lib % 100;
    const int bmaj = version_part(m.tensorrt_version, 0), bmin = version_part(m.tensorrt_version, 1),
              bpat = version_part(m.tensorrt_version, 2);
    if (bmaj < 0 || bmin < 0)
        throw Error(path + ".json: TensorRT version '" + m.tensorrt_version + "' is not MAJOR.MINOR[...]");
    const bool same = bmaj == major && bmin == minor && (bpat < 0 || bpat == patch);
    const bool vc = m.version_compatible && ((bmaj == major && minor >= bmin) || (bmaj == 10 && major == 11));
    int device = 0;
    cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    cudaDeviceProp prop{};
    cuda_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    const bool same_gpu = (prop.major == m.compute_capability[0] && prop.minor == m.compute_capability[1]) ||
                          (m.hw_compat == "ampere_plus" && prop.major >= 8);
    if ((same || vc) && same_gpu) return;
    throw Error("engine built with TensorRT " + m.tensorrt_version + " on sm_" + std::to_string(m.compute_capability[0]) +
                std::to_string(m.compute_capability[1]) + " (" + m.gpu + "); this machine runs TensorRT " +
                std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) + " on sm_" +
                std::to_string(prop.major) + std::to_string(prop.minor) + " (" + prop.name +
                "): rebuild it here, or build with --version-compatible / --hw-compat ampere_plus");
}

class TrtBackend : public Backend {
public:
    TrtBackend(const std::string& path, const std::vector<char>& plan, const PlanManifest& manifest,
               const Options& options)
        : path_(path) {
        const Card& card = manifest.card;
        check_compatible(manifest, path);
        runtime_.reset(nvinfer1::createInferRuntime(logger_));
        if (!runtime_) throw Error("TensorRT could not create a runtime: " + logger_.last_error());
        engine_.reset(runtime_->deserializeCudaEngine(plan.data(), plan.size()));
        if (!engine_) throw Error("TensorRT refused " + path + ": " + logger_.last_error());

        const int n_io = engine_->getNbIOTensors();
        for (int i = 0; i < n_io; ++i) {
            const char* name = engine_->getIOTensorName(i);
            if (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT) {
                if (!input_.empty()) throw Error(path + " has more than one input; a wrn-deploy classifier has one");
                input_ = name;
            } else if (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kOUTPUT && output_.empty()) {
                output_ = name;
            }
        }
        if (input_.empty() || output_.empty()) throw Error(path + " has no input or no output tensor");
        if (input_ != card.input_name)
            throw Error(path + ": the engine's input is '" + input_ + "' but its card says '" + card.input_name + "'");
        if (engine_->getTensorDataType(input_.c_str()) != nvinfer1::DataType::kFLOAT ||
            engine_->getTensorDataType(output_.c_str()) != nvinfer1::DataType::kFLOAT)
            throw Error(path + ": the engine's input and output must be float32");
        size_ = card.input_size;
        classes_ = static_cast<int>(card.classes.size());
        const nvinfer1::Dims in = engine_->getTensorShape(input_.c_str());
        if (in.nbDims != 4 || in.d[1] != 3 || in.d[2] != size_ || in.d[3] != size_)
            throw Error(path + ": the engine's input shape does not match its card (3x" + std::to_string(size_) + "x" +
                        std::to_string(size_) + ")");
        if (in.d[0] > 0) {
            min_batch_ = max_batch_ = static_cast<int>(in.d[0]);
        } else {
            const nvinfer1::Dims lo = engine_->getProfileShape(input_.c_str(), 0, nvinfer1::OptProfileSelector::kMIN);
            const nvinfer1::Dims hi = engine_->getProfileShape(input_.c_str(), 0, nvinfer1::OptProfileSelector::kMAX);
            if (lo.nbDims != 4 || hi.nbDims != 4 || lo.d[0] < 1 || hi.d[0] < lo.d[0])
                throw Error(path + ": the engine's optimization profile gives no usable batch range");
            min_batch_ = static_cast<int>(lo.d[0]);
            max_batch_ = static_cast<int>(hi.d[0]);
        }
        (void)options;
        context_.reset(engine_->createExecutionContext());
        if (!context_) throw Error("TensorRT could not create an execution context for " + path + ": " + logger_.last_error());
        cuda_check(cudaStreamCreate(&stream_.handle), "cudaStreamCreate");
        const std::size_t in_bytes = std::size_t(max_batch_) * 3 * size_ * size_ * sizeof(float);
        const std::size_t out_bytes = std::size_t(max_batch_) * classes_ * sizeof(float);
        cuda_check(cudaMalloc(&d_in_.ptr, in_bytes), "cudaMalloc (input)");
        cuda_check(cudaMalloc(&d_out_.ptr, out_bytes), "cudaMalloc (output)");
        if (!context_->setTensorAddress(input_.c_str(), d_in_.ptr) ||
            !context_->setTensorAddress(output_.c_str(), d_out_.ptr))
            throw Error("TensorRT refused the device buffers: " + logger_.last_error());
    }

    std::string name() const override { return "tensorrt"; }

    int min_batch() const override { return min_batch_; }
    int max_batch() const override { return max_batch_; }

    // n is within [min_batch, max_batch]: Classifier splits and pads batches to the range.
    std::vector<float> run(const float* input, int n) override {
        if (n < min_batch_ || n > max_batch_)
            throw Error("batch of " + std::to_string(n) + " is outside the engine's range " +
                        std::to_string(min_batch_) + ".." + std::to_string(max_batch_));
        nvinfer1::Dims shape{};
        shape.nbDims = 4;
        shape.d[0] = n;
        shape.d[1] = 3;
        shape.d[2] = size_;
        shape.d[3] = size_;
        if (!context_->setInputShape(input_.c_str(), shape))
            throw Error("TensorRT refused the input shape " + std::to_string(n) + "x3x" + std::to_string(size_) + "x" +
                        std::to_string(size_) + ": " + logger_.last_error());
        const nvinfer1::Dims out = context_->getTensorShape(output_.c_str());
        if (out.nbDims != 2 || out.d[0] != n || out.d[1] != classes_)
            throw Error(path_ + ": the engine's output is not " + std::to_string(n) + " x " + std::to_string(classes_));
        const std::size_t in_bytes = std::size_t(n) * 3 * size_ * size_ * sizeof(float);
        std::vector<float> logits(std::size_t(n) * classes_);
        cuda_check(cudaMemcpyAsync(d_in_.ptr, input, in_bytes, cudaMemcpyHostToDevice, stream_.handle), "cudaMemcpyAsync (input)");
        if (!context_->enqueueV3(stream_.handle)) throw Error("TensorRT could not run " + path_ + ": " + logger_.last_error());
        cuda_check(cudaMemcpyAsync(logits.data(), d_out_.ptr, logits.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                   stream_.handle), "cudaMemcpyAsync (logits)");
        cuda_check(cudaStreamSynchronize(stream_.handle), "cudaStreamSynchronize");
        cuda_check(cudaGetLastError(), "the inference");
        return logits;
    }

private:
    std::string path_;
    Logger logger_;
    // Destroyed in reverse order: the stream (synchronized first), the buffers, the context, the
    // engine, the runtime, and last the logger they report to.
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<nvinfer1::IExecutionContext> context_;
    std::string input_, output_;
    int size_ = 0, classes_ = 0, min_batch_ = 1, max_batch_ = 1;
    DeviceBuffer d_in_, d_out_;
    Stream stream_;
};

}  // namespace

bool have_tensorrt() { return true; }

std::unique_ptr<Backend> open_tensorrt(const std::string& path, const std::vector<char>& plan,
                                       const PlanManifest& manifest, const Options& options) {
    return std::make_unique<TrtBackend>(path, plan, manifest, options);
}

}  // namespace wrn
