// The CPU backend: ONNX Runtime's C++ API (the headers of Debian's libonnxruntime-dev, the library
// of the onnxruntime wheel), with the session options the Python OrtRunner uses.
#include <cstring>

#include <onnxruntime_cxx_api.h>

#include "backends.hpp"

namespace wrn {
namespace {

constexpr const char* kCardKey = "wrn_deploy.card";  // wrn_deploy.card.ONNX_KEY

Ort::Env& environment() {
    static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "wrn-classify");  // errors arrive as exceptions
    return env;
}

std::string element_type(ONNXTensorElementDataType t) {
    switch (t) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
        default: return "type " + std::to_string(static_cast<int>(t));
    }
}

class OrtBackend : public Backend {
public:
    OrtBackend(const std::string& path, const Options& options, Card& card) : path_(path) {
        Ort::SessionOptions so;
        so.SetLogSeverityLevel(4);  // fatal only: errors are thrown, and reported in one line
        if (options.threads > 0) so.SetIntraOpNumThreads(options.threads);
        session_ = std::make_unique<Ort::Session>(environment(), path.c_str(), so);

        Ort::AllocatorWithDefaultOptions alloc;
        Ort::ModelMetadata meta = session_->GetModelMetadata();
        Ort::AllocatedStringPtr raw = meta.LookupCustomMetadataMapAllocated(kCardKey, alloc);
        if (!raw) throw Error(path + " has no wrn-deploy card in its metadata (was it made by wrn-deploy?)");
        card = Card::from_json(raw.get(), path);
        if (card.kind != "onnx") throw Error(path + ": its card describes a " + card.kind + ", but the file is an onnx");
        if (card.precision.find("int8") != std::string::npos && card.precision.find("fp16") != std::string::npos) {
            // As the Python OrtRunner does: ONNX Runtime's graph optimizer rewrites Q/DQ graphs with an
            // FP16 remainder wrongly (docs/int8.md), so this form runs as written.
            so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_DISABLE_ALL);
            session_ = std::make_unique<Ort::Session>(environment(), path.c_str(), so);
        }

        if (session_->GetInputCount() != 1 || session_->GetOutputCount() < 1)
            throw Error(path + " has " + std::to_string(session_->GetInputCount()) +
                        " inputs; a wrn-deploy classifier has one");
        input_name_ = session_->GetInputNameAllocated(0, alloc).get();
        output_name_ = session_->GetOutputNameAllocated(0, alloc).get();
        if (input_name_ != card.input_name)
            throw Error(path + ": the graph's input is '" + input_name_ + "' but its card says '" + card.input_name + "'");
        // The shape infos are views into their TypeInfo, which must outlive them.
        Ort::TypeInfo in_type = session_->GetInputTypeInfo(0), out_type = session_->GetOutputTypeInfo(0);
        auto in_info = in_type.GetTensorTypeAndShapeInfo();
        auto out_info = out_type.GetTensorTypeAndShapeInfo();
        if (in_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
            throw Error(path + " takes " + element_type(in_info.GetElementType()) + " input; this program feeds float32");
        if (out_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
            throw Error(path + " returns " + element_type(out_info.GetElementType()) + " logits; this program reads float32");
        std::vector<int64_t> in_shape = in_info.GetShape(), out_shape = out_info.GetShape();
        const int S = card.input_size;
        if (in_shape.size() != 4 || in_shape[1] != 3 || in_shape[2] != S || in_shape[3] != S)
            throw Error(path + ": the graph's input shape does not match its card (3x" + std::to_string(S) + "x" +
                        std::to_string(S) + ")");
        if (out_shape.size() != 2 || (out_shape[1] >= 0 && out_shape[1] != static_cast<int64_t>(card.classes.size())))
            throw Error(path + ": the graph's output is not batch x " + std::to_string(card.classes.size()) + " logits");
        if (in_shape[0] > 0) {
            if (card.fixed_batch && card.fixed_batch != in_shape[0])
                throw Error(path + ": the graph's batch is " + std::to_string(in_shape[0]) + " but its card says " +
                            std::to_string(card.fixed_batch));
            card.fixed_batch = static_cast<int>(in_shape[0]);
        }
        classes_ = static_cast<int>(card.classes.size());
        size_ = S;
        fixed_ = card.fixed_batch;
    }

    std::string name() const override { return "onnxruntime-cpu"; }
    int min_batch() const override { return fixed_ ? fixed_ : 1; }
    int max_batch() const override { return fixed_; }

    std::vector<float> run(const float* input, int n) override {
        try {
            return run_batch(input, n);
        } catch (const Ort::Exception& e) {
            throw Error("ONNX Runtime could not run " + path_ + " on " + std::to_string(n) + " images: " +
                        first_line(e.what()));
        }
    }

private:
    std::vector<float> run_batch(const float* input, int n) {
        const int64_t shape[4] = {n, 3, size_, size_};
        const std::size_t count = std::size_t(n) * 3 * size_ * size_;
        Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
        Ort::Value in = Ort::Value::CreateTensor<float>(mem, const_cast<float*>(input), count, shape, 4);
        const char* in_names[] = {input_name_.c_str()};
        const char* out_names[] = {output_name_.c_str()};
        std::vector<Ort::Value> out = session_->Run(Ort::RunOptions{nullptr}, in_names, &in, 1, out_names, 1);
        auto info = out.at(0).GetTensorTypeAndShapeInfo();
        std::vector<int64_t> oshape = info.GetShape();
        if (oshape.size() != 2 || oshape[0] != n || oshape[1] != classes_)
            throw Error("ONNX Runtime returned logits of an unexpected shape from " + path_);
        const float* p = out[0].GetTensorData<float>();
        return std::vector<float>(p, p + std::size_t(n) * classes_);
    }

    std::string path_, input_name_, output_name_;
    std::unique_ptr<Ort::Session> session_;
    int classes_ = 0, size_ = 0, fixed_ = 0;
};

}  // namespace

bool have_onnxruntime() { return true; }

std::unique_ptr<Backend> open_onnxruntime(const std::string& path, const Options& options, Card& card) {
    try {
        return std::make_unique<OrtBackend>(path, options, card);
    } catch (const Ort::Exception& e) {
        throw Error("ONNX Runtime cannot load " + path + ": " + first_line(e.what()));
    }
}

}  // namespace wrn
