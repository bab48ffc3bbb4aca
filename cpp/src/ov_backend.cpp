// The OpenVINO backend (CPU): OpenVINO's C++ runtime (the 2.0 API) reads the ONNX file itself
// through its ONNX frontend, compiles it for the CPU plugin and runs one synchronous request.
//
// Settings, chosen for a classifier that answers one batch at a time and for parity with the ONNX
// Runtime backend: f32 inference precision (on CPUs with AMX or AVX-512 BF16 the plugin's default
// would be bf16, which changes the logits; --precision-hint bf16 asks for it by name), the latency
// hint with one stream and one request, and --threads as the stream's thread count.
#include <openvino/core/model.hpp>
#include <openvino/frontend/manager.hpp>
#include <openvino/runtime/core.hpp>
#include <openvino/runtime/properties.hpp>

#include "backends.hpp"

namespace wrn {
namespace {

constexpr const char* kCardKey = "wrn_deploy.card";  // wrn_deploy.card.ONNX_KEY

// The ONNX frontend keeps the file's metadata_props under rt_info["framework"].
std::string onnx_metadata(const std::shared_ptr<ov::Model>& model, const std::string& key) {
    if (!model->has_rt_info("framework", key)) return "";
    return model->get_rt_info<std::string>("framework", key);
}

// OpenVINO's messages are a stack of "Exception from FILE:LINE:" and "Check '...' failed at ..."
// lines around the one that says what went wrong: that one.
std::string ov_message(const std::string& text) {
    const std::string unconverted = "No conversion rule found for operations:";
    const auto at = text.find(unconverted);
    if (at != std::string::npos) return first_line(text.substr(at));
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string line = first_line(text.substr(start, end - start));
        if (line != "unknown error" && line.rfind("Exception from ", 0) != 0 && line.rfind("Check '", 0) != 0 &&
            line.rfind("FrontEnd API failed", 0) != 0)
            return line;
        start = end + 1;
    }
    return first_line(text);
}

// The file through OpenVINO's ONNX frontend by name: Core::read_model would try every frontend on a
// file that is not ONNX (TensorFlow's logs its parse errors to stderr).
std::shared_ptr<ov::Model> read_onnx(const std::string& path) {
    ov::frontend::FrontEndManager manager;
    ov::frontend::FrontEnd::Ptr onnx = manager.load_by_framework("onnx");
    return onnx->convert(onnx->load(path));
}

std::string element_name(const ov::element::Type& t) {
    if (t == ov::element::f32) return "float32";
    if (t == ov::element::f16) return "float16";
    if (t == ov::element::u8) return "uint8";
    return t.get_type_name();
}

class OvBackend : public Backend {
public:
    OvBackend(const std::string& path, const Options& options, Card& card) : path_(path) {
        std::shared_ptr<ov::Model> model = read_onnx(path);
        const std::string raw = onnx_metadata(model, kCardKey);
        if (raw.empty()) throw Error(path + " has no wrn-deploy card in its metadata (was it made by wrn-deploy?)");
        card = Card::from_json(raw, path);
        if (card.kind != "onnx") throw Error(path + ": its card describes a " + card.kind + ", but the file is an onnx");
        if (model->inputs().size() != 1 || model->outputs().empty())
            throw Error(path + " has " + std::to_string(model->inputs().size()) +
                        " inputs; a wrn-deploy classifier has one");
        const ov::Output<ov::Node> in = model->input(), out = model->output(0);
        if (!in.get_names().count(card.input_name))
            throw Error(path + ": the graph's input is '" + in.get_any_name() + "' but its card says '" +
                        card.input_name + "'");
        if (in.get_element_type() != ov::element::f32)
            throw Error(path + " takes " + element_name(in.get_element_type()) + " input; this program feeds float32");
        if (out.get_element_type() != ov::element::f32)
            throw Error(path + " returns " + element_name(out.get_element_type()) +
                        " logits; this program reads float32");
        const ov::PartialShape ishape = in.get_partial_shape(), oshape = out.get_partial_shape();
        const int S = card.input_size;
        if (ishape.rank().is_dynamic() || ishape.size() != 4 || ishape[1] != 3 || ishape[2] != S || ishape[3] != S)
            throw Error(path + ": the graph's input shape does not match its card (3x" + std::to_string(S) + "x" +
                        std::to_string(S) + ")");
        const auto classes = static_cast<int64_t>(card.classes.size());
        if (oshape.rank().is_dynamic() || oshape.size() != 2 ||
            (oshape[1].is_static() && oshape[1].get_length() != classes))
            throw Error(path + ": the graph's output is not batch x " + std::to_string(classes) + " logits");
        if (ishape[0].is_static()) {
            const int64_t b = ishape[0].get_length();
            if (card.fixed_batch && card.fixed_batch != b)
                throw Error(path + ": the graph's batch is " + std::to_string(b) + " but its card says " +
                            std::to_string(card.fixed_batch));
            card.fixed_batch = static_cast<int>(b);
        }
        classes_ = static_cast<int>(classes);
        size_ = S;
        fixed_ = card.fixed_batch;

        const ov::element::Type precision = options.precision_hint == "bf16" ? ov::element::bf16 : ov::element::f32;
        ov::AnyMap config{ov::hint::inference_precision(precision),
                          ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY),
                          ov::num_streams(1), ov::hint::num_requests(1)};
        if (options.threads > 0) config.emplace(ov::inference_num_threads(options.threads));
        ov::Core core;
        compiled_ = core.compile_model(model, "CPU", config);
        request_ = compiled_.create_infer_request();
        // What the plugin settled on, for the name (--json's "backend"): a hint it cannot honour is
        // lowered silently (bf16 on a CPU without it), and the name should not claim otherwise.
        precision_ = compiled_.get_property(ov::hint::inference_precision);
    }

    std::string name() const override {
        return precision_ == ov::element::f32 ? "openvino-cpu" : "openvino-cpu-" + precision_.get_type_name();
    }
    int min_batch() const override { return fixed_ ? fixed_ : 1; }
    int max_batch() const override { return fixed_; }

    std::vector<float> run(const float* input, int n) override {
        try {
            return run_batch(input, n);
        } catch (const ov::Exception& e) {
            throw Error("OpenVINO could not run " + path_ + " on " + std::to_string(n) + " images: " +
                        ov_message(e.what()));
        }
    }

private:
    std::vector<float> run_batch(const float* input, int n) {
        const ov::Shape shape{std::size_t(n), 3, std::size_t(size_), std::size_t(size_)};
        // A view of the caller's floats (no copy); the request only reads its input.
        ov::Tensor in(ov::element::f32, shape, const_cast<float*>(input));
        request_.set_input_tensor(in);
        request_.infer();
        const ov::Tensor out = request_.get_output_tensor(0);
        const ov::Shape os = out.get_shape();
        if (os.size() != 2 || os[0] != std::size_t(n) || os[1] != std::size_t(classes_) ||
            out.get_element_type() != ov::element::f32)
            throw Error("OpenVINO returned logits of an unexpected shape from " + path_);
        const float* p = out.data<const float>();
        return std::vector<float>(p, p + std::size_t(n) * classes_);
    }

    std::string path_;
    ov::CompiledModel compiled_;
    ov::InferRequest request_;
    ov::element::Type precision_ = ov::element::f32;
    int classes_ = 0, size_ = 0, fixed_ = 0;
};

}  // namespace

bool have_openvino() { return true; }

std::unique_ptr<Backend> open_openvino(const std::string& path, const Options& options, Card& card) {
    try {
        return std::make_unique<OvBackend>(path, options, card);
    } catch (const ov::Exception& e) {
        throw Error("OpenVINO cannot load " + path + ": " + ov_message(e.what()));
    }
}

}  // namespace wrn
