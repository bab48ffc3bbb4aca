// wrn-deploy C++ library: load a Wide ResNet artifact once, classify many images.
//
//   auto clf = wrn::Classifier::open("model.onnx");          // or "model.plan" (TensorRT builds)
//   (wrn::Options::backend = "openvino" runs the .onnx on OpenVINO, in builds that have it)
//   for (auto& path : paths) {
//       wrn::Prediction p = clf->classify({wrn::load_image(path, clf->card())}, 5).at(0);
//       std::cout << clf->card().classes[p.top[0].index] << "\n";
//   }
//
// Every function reports a problem by throwing wrn::Error, whose message is one line meant for the
// user ("cannot decode image x.png: ..."); nothing aborts the process.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace wrn {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// The artifact's card: what the model takes and what it answers (the Python side's wrn_deploy.card).
struct Card {
    std::string kind;               // "onnx" or "plan"
    std::string arch;
    std::string precision;          // fp32, fp16, int8+fp16, ...
    std::vector<std::string> classes;
    int input_size = 0;             // square images of input_size pixels a side
    std::array<float, 3> mean{}, std{};
    std::string input_name = "images";
    std::string input_dtype = "float32";
    bool normalized_in_graph = true;  // the graph computes (x - mean) / std itself
    int fixed_batch = 0;              // 0: the batch is dynamic
    // The card's preprocess: the shorter side resized to `resize` pixels with `interpolation`
    // ("bilinear" or "bicubic", Pillow's antialiased filters), then a centre crop of input_size;
    // resize 0: images are used as they are and must be input_size square. A card without the
    // field reads as wrn_deploy.card.default_preprocess: input_size >= 64 resizes to
    // int(input_size * 256 / 224) bilinear, smaller inputs do not resize.
    int resize = 0;
    std::string interpolation = "bilinear";

    // Parses and validates the card's JSON; `where` names its origin in error messages.
    static Card from_json(const std::string& text, const std::string& where);
};

// Largest input_size accepted from a card, and the largest image (in pixels) decoded: the Python
// side's limit (PIL's decompression-bomb threshold, an error there).
constexpr int kMaxInputSize = 4096;
constexpr std::uint64_t kMaxImagePixels = 89478485ULL;

// A decoded image: 8-bit RGB, row-major, height x width x 3.
struct Image {
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;
};

// Decodes a PNG or JPEG file to 8-bit RGB the way Pillow's Image.open(path).convert("RGB") does.
Image decode_image(const std::string& path);

// Pillow's Image.resize(size, BILINEAR or BICUBIC) on 8-bit RGB (antialiased, fixed-point), bit
// for bit; `interpolation` is "bilinear" or "bicubic".
Image resize(const Image& in, int width, int height, const std::string& interpolation);
Image resize_bilinear(const Image& in, int width, int height);

// The card's preprocess for an image of any size, to a square of input_size pixels, still 8-bit:
// torchvision's Resize(card.resize, interpolation) on a PIL image (the shorter side to resize, the
// longer to int(resize * longer / shorter)) and CenterCrop(input_size) (offsets
// int(round((side - input_size) / 2.0))); with no resize, the image must be input_size square.
Image fit_to_model(const Image& img, const Card& card, const std::string& where);

// The model's input for one image: float32 NCHW (3 x size x size), RGB in [0, 1], normalised with
// the card's mean/std only when the graph does not do it itself. Appended to `out`.
void to_tensor(const Image& img, const Card& card, std::vector<float>& out);

// decode_image + fit_to_model, named after the file in errors.
Image load_image(const std::string& path, const Card& card);

// SHA-256 (FIPS 180-4) of a byte buffer, as 64 lowercase hex digits.
std::string sha256_hex(const void* data, std::size_t size);

// A plan's manifest (model.plan.json beside it), checked against the exact plan bytes given.
struct PlanManifest {
    Card card;
    std::string tensorrt_version;
    int compute_capability[2] = {0, 0};
    std::string gpu;
    bool version_compatible = false;
    std::string hw_compat = "none";
};

// Reads `plan_path` + ".json" and checks that `plan_bytes` have the size and SHA-256 it records;
// refuses a plan that carries a signature (this program cannot verify signatures). A size or
// SHA-256 that does not match is refused unless `allow_unverified` (then a warning goes to stderr);
// a plan without a manifest is always refused here, since the card this program needs is in it.
// The same policy as wrn_deploy/plan_trust.py.
PlanManifest check_plan(const std::string& plan_path, const std::vector<char>& plan_bytes,
                        bool allow_unverified = false);

// Reads a whole file (at most `max_bytes`), or throws naming it.
std::vector<char> read_file(const std::string& path, std::uint64_t max_bytes, const std::string& what);

struct Scored {
    int index;
    float logit;
    double probability;  // softmax over all classes
};

struct Prediction {
    std::vector<float> logits;
    std::vector<Scored> top;  // best first; ties go to the lower class index
};

// Top-k of one row of logits (k clipped to the number of classes).
std::vector<Scored> top_k(const float* logits, int classes, int k);

// A backend runs float32 NCHW batches and returns float32 logits.
class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    // The batch sizes run() accepts: [min_batch(), max_batch()], max_batch() 0 for no limit.
    virtual int min_batch() const { return 1; }
    virtual int max_batch() const { return 0; }
    // Runs `n` images (n * 3 * size * size floats, n within the range above); returns n * classes
    // float32 logits.
    virtual std::vector<float> run(const float* input, int n) = 0;
};

struct Options {
    // Which backend runs a .onnx file: "onnxruntime", "openvino", or "" for the first one this build
    // has (ONNX Runtime, else OpenVINO). A plan always runs on TensorRT.
    std::string backend;
    int threads = 0;      // CPU backends: ONNX Runtime's intra-op threads, OpenVINO's inference threads (0: theirs)
    std::string precision_hint = "f32";  // OpenVINO: the inference precision it may use (f32 or bf16)
    int max_batch = 32;   // images per backend call
    bool allow_unverified = false;  // load a plan whose bytes do not match its manifest (--allow-unverified)
};

class Classifier {
public:
    // Opens a .onnx file (ONNX Runtime or OpenVINO backend, see Options::backend) or a .plan /
    // .engine file (TensorRT backend, after the manifest check). Throws wrn::Error with one line when the file cannot be used.
    static std::unique_ptr<Classifier> open(const std::string& path, const Options& options = {});

    const Card& card() const { return card_; }
    const std::string& backend_name() const { return backend_name_; }

    // The exact input tensor the model gets for these images (N x 3 x size x size).
    std::vector<float> input_tensor(const std::vector<Image>& images) const;

    // Logits and top-k for each image (images already fitted with fit_to_model/load_image).
    std::vector<Prediction> classify(const std::vector<Image>& images, int k = 5);

    // Logits for an input tensor made by input_tensor (n images).
    std::vector<float> logits(const std::vector<float>& input, int n);

private:
    Card card_;
    std::unique_ptr<Backend> backend_;
    std::string backend_name_;
    Options options_;
};

// The results of `names.size()` images as one JSON object (what `wrn-classify --json` prints):
// model, backend, arch, precision, input_size, normalized_in_graph, and per image its name, the
// top-k (index, class, logit, probability) and all logits. Floats print so that they read back
// to the same float32.
std::string results_json(const Classifier& classifier, const std::string& model,
                         const std::vector<std::string>& names, const std::vector<float>& logits, int k);

}  // namespace wrn
