// wrn::Classifier: picks the backend from the file, checks plans against their manifest first,
// splits batches to what the backend takes (zero-padding a short last batch, as the Python
// Runner.infer does), and ranks the classes.
#include <algorithm>
#include <cstring>
#include <sys/stat.h>

#include "backends.hpp"

namespace wrn {

std::string first_line(const std::string& text) {
    std::string line = text.substr(0, text.find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line.empty() ? "unknown error" : line;
}

#ifndef WRN_HAVE_ONNXRUNTIME
bool have_onnxruntime() { return false; }
std::unique_ptr<Backend> open_onnxruntime(const std::string& path, const Options&, Card&) {
    throw Error(path + ": this build of wrn-classify has no ONNX Runtime backend");
}
#endif

#ifndef WRN_HAVE_OPENVINO
bool have_openvino() { return false; }
std::unique_ptr<Backend> open_openvino(const std::string& path, const Options&, Card&) {
    throw Error(path + ": this build of wrn-classify has no OpenVINO backend "
                "(OpenVINO's C++ runtime was not found when it was compiled)");
}
#endif

#ifndef WRN_HAVE_TENSORRT
bool have_tensorrt() { return false; }
std::unique_ptr<Backend> open_tensorrt(const std::string& path, const std::vector<char>&, const PlanManifest&,
                                       const Options&) {
    throw Error(path + ": this build of wrn-classify has no TensorRT backend "
                "(TensorRT was not found when it was compiled); run the .onnx file instead");
}
#endif

namespace {

std::string lower_suffix(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const auto dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string s = path.substr(dot);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

constexpr std::uint64_t kMaxPlanBytes = 8ULL << 30;

// The backend for a .onnx file: the one asked for, or the first this build has.
std::string onnx_backend(const Options& options) {
    if (!options.backend.empty()) return options.backend;
    return have_onnxruntime() || !have_openvino() ? "onnxruntime" : "openvino";
}

}  // namespace

std::unique_ptr<Classifier> Classifier::open(const std::string& path, const Options& options) {
    if (options.max_batch < 1 || options.threads < 0) throw Error("batch must be at least 1 and threads not negative");
    if (!options.backend.empty() && options.backend != "onnxruntime" && options.backend != "openvino")
        throw Error("unknown backend '" + options.backend.substr(0, 40) + "'; expected onnxruntime or openvino");
    if (options.precision_hint != "f32" && options.precision_hint != "bf16")
        throw Error("unknown precision hint '" + options.precision_hint.substr(0, 40) + "'; expected f32 or bf16");
    if (options.precision_hint != "f32" && options.backend != "openvino")
        throw Error("a precision hint applies to the openvino backend only");
    auto c = std::unique_ptr<Classifier>(new Classifier());
    c->options_ = options;
    const std::string suffix = lower_suffix(path);
    if (suffix == ".onnx") {
        // ONNX Runtime opens the file itself; check it first so a directory or a missing file gets our message.
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) throw Error("ONNX file " + path + " does not exist");
        if (!S_ISREG(st.st_mode)) throw Error("ONNX file " + path + " is not a regular file");
    } else if (suffix != ".plan" && suffix != ".engine") {
        throw Error(path + ": unknown model type " + (suffix.empty() ? "(no suffix)" : suffix) +
                    "; expected .onnx, .plan or .engine");
    }
    if (suffix == ".onnx") {
        c->backend_ = onnx_backend(options) == "openvino" ? open_openvino(path, options, c->card_)
                                                          : open_onnxruntime(path, options, c->card_);
    } else {
        if (!options.backend.empty())
            throw Error(path + ": the " + options.backend + " backend runs .onnx files; a plan runs on TensorRT");
        std::vector<char> plan = read_file(path, kMaxPlanBytes, "plan");
        PlanManifest manifest = check_plan(path, plan, options.allow_unverified);
        c->card_ = manifest.card;
        c->backend_ = open_tensorrt(path, plan, manifest, options);
    }
    c->backend_name_ = c->backend_->name();
    return c;
}

std::vector<float> Classifier::input_tensor(const std::vector<Image>& images) const {
    std::vector<float> out;
    out.reserve(images.size() * 3 * std::size_t(card_.input_size) * card_.input_size);
    for (const Image& img : images) to_tensor(img, card_, out);
    return out;
}

std::vector<float> Classifier::logits(const std::vector<float>& input, int n) {
    const std::size_t per = 3 * std::size_t(card_.input_size) * card_.input_size;
    const int classes = static_cast<int>(card_.classes.size());
    if (n < 0 || input.size() != per * std::size_t(n)) throw Error("input tensor does not hold the images it claims");
    const int lo = backend_->min_batch();
    int hi = backend_->max_batch() > 0 ? backend_->max_batch() : options_.max_batch;
    if (backend_->max_batch() > 0) hi = std::min(hi, std::max(options_.max_batch, lo));
    std::vector<float> out;
    out.reserve(std::size_t(n) * classes);
    std::vector<float> padded;
    for (int start = 0; start < n; start += hi) {
        const int take = std::min(hi, n - start);
        const float* p = input.data() + per * start;
        int run_n = take;
        if (take < lo) {  // a fixed or minimum batch: zero images fill the rest
            padded.assign(per * lo, 0.0f);
            std::memcpy(padded.data(), p, per * take * sizeof(float));
            p = padded.data();
            run_n = lo;
        }
        std::vector<float> got = backend_->run(p, run_n);
        out.insert(out.end(), got.begin(), got.begin() + std::size_t(take) * classes);
    }
    return out;
}

std::vector<Prediction> Classifier::classify(const std::vector<Image>& images, int k) {
    const std::vector<float> all = logits(input_tensor(images), static_cast<int>(images.size()));
    const int classes = static_cast<int>(card_.classes.size());
    std::vector<Prediction> out(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) {
        const float* row = all.data() + i * classes;
        out[i].logits.assign(row, row + classes);
        out[i].top = top_k(row, classes, k);
    }
    return out;
}

}  // namespace wrn
