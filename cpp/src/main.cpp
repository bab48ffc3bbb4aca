// wrn-classify: classify image files with a wrn-deploy model (ONNX via ONNX Runtime or, where this
// build has it, OpenVINO; or a TensorRT plan where this build has TensorRT). Errors are one line on
// stderr: exit status 2 for bad input, 3 for anything unexpected (as the wrn-deploy command does).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <new>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "backends.hpp"

namespace {

// One line, whatever the message holds (a file name can contain a newline).
std::string one_line(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r' || c == '\0') c = ' ';
    return text;
}

const char* kUsage =
    "usage: wrn-classify --model FILE [--backend NAME [--precision-hint P]] [--topk K] [--json] [--batch N]\n"
    "                    [--threads N] [--dump-input FILE [--force]] [--allow-unverified] IMAGE...\n"
    "\n"
    "Classify PNG or JPEG images with a wrn-deploy model: a .onnx file (FP32, FP16 or INT8; ONNX Runtime or\n"
    "OpenVINO on the CPU) or a .plan/.engine TensorRT engine with its manifest (builds with TensorRT only).\n"
    "\n"
    "  --model FILE       the model; its card (in the ONNX metadata or the plan's manifest) gives the\n"
    "                     input size, the class names and whether the graph normalises its input\n"
    "  --backend NAME     what runs a .onnx file: onnxruntime or openvino (builds that found OpenVINO's\n"
    "                     C++ runtime) [default: onnxruntime, or openvino in a build without it]\n"
    "  --precision-hint P openvino: the precision its CPU plugin may compute in, f32 (default: the same\n"
    "                     logits as ONNX Runtime within rounding) or bf16 (faster where the CPU has it)\n"
    "  --topk K           classes to show per image (default 5)\n"
    "  --json             print one JSON object with the top-k and all logits of every image\n"
    "  --batch N          images per inference call (default 32)\n"
    "  --threads N        CPU threads: ONNX Runtime's intra-op or OpenVINO's inference threads\n"
    "                     (default: the runtime's choice)\n"
    "  --dump-input FILE  also write the exact input tensor (float32, N x 3 x S x S, native byte order);\n"
    "                     an existing FILE is replaced only with --force, an input never\n"
    "  --force            replace an existing --dump-input FILE\n"
    "  --allow-unverified load a plan whose size or sha256 does not match its manifest (executable\n"
    "                     code: only a plan you trust)\n"
    "  --help             this text\n";

struct Args {
    std::string model, dump, backend, precision_hint = "f32";
    int topk = 5, batch = 32, threads = 0;
    bool json = false, force = false, allow_unverified = false;
    std::vector<std::string> images;
    std::string dump_tmp;  // where the dump is written until it is complete
};

int parse_int(const std::string& opt, const char* text, int lo, int hi) {
    errno = 0;
    char* end = nullptr;
    long v = std::strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi)
        throw wrn::Error(opt + " needs an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                         ", got '" + std::string(text).substr(0, 40) + "'");
    return static_cast<int>(v);
}

bool same_file(const struct stat& a, const std::string& path) {
    struct stat b {};
    return ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// --dump-input never replaces an input (the model, its manifest, an image, even through a link),
// and replaces another existing file only with --force.
void check_dump(const Args& a) {
    if (a.dump == a.model) throw wrn::Error("--dump-input " + a.dump + " is the model file; choose another name");
    struct stat st {};
    if (::lstat(a.dump.c_str(), &st) != 0) return;
    if (::stat(a.dump.c_str(), &st) == 0) {
        std::vector<std::string> inputs = a.images;
        inputs.push_back(a.model);
        inputs.push_back(a.model + ".json");
        for (const std::string& in : inputs)
            if (same_file(st, in)) throw wrn::Error("--dump-input " + a.dump + " is the input " + in + "; choose another name");
    }
    if (!a.force) throw wrn::Error("--dump-input " + a.dump + " exists; pass --force to replace it");
}

// Returns false when --help was asked for.
bool parse(int argc, char** argv, Args& a) {
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
            a.images.push_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        std::string value;
        bool inline_value = false;
        const auto eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        auto need = [&](const std::string& opt) -> std::string {
            if (inline_value) return value;
            if (i + 1 >= argc) throw wrn::Error(opt + " needs a value (see --help)");
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") return false;
        if (arg == "--json" && !inline_value) a.json = true;
        else if (arg == "--force" && !inline_value) a.force = true;
        else if (arg == "--allow-unverified" && !inline_value) a.allow_unverified = true;
        else if (arg == "--model") a.model = need(arg);
        else if (arg == "--dump-input") a.dump = need(arg);
        else if (arg == "--backend") a.backend = need(arg);
        else if (arg == "--precision-hint") a.precision_hint = need(arg);
        else if (arg == "--topk") a.topk = parse_int(arg, need(arg).c_str(), 1, 1000000);
        else if (arg == "--batch") a.batch = parse_int(arg, need(arg).c_str(), 1, 4096);
        else if (arg == "--threads") a.threads = parse_int(arg, need(arg).c_str(), 0, 1024);
        else throw wrn::Error("unknown option " + arg.substr(0, 40) + " (see --help)");
    }
    if (a.model.empty()) throw wrn::Error("--model FILE is required (see --help)");
    if (!a.backend.empty() && a.backend != "onnxruntime" && a.backend != "openvino")
        throw wrn::Error("--backend must be onnxruntime or openvino, got '" + a.backend.substr(0, 40) + "'");
    if (a.precision_hint != "f32" && a.precision_hint != "bf16")
        throw wrn::Error("--precision-hint must be f32 or bf16, got '" + a.precision_hint.substr(0, 40) + "'");
    if (a.precision_hint != "f32" && a.backend != "openvino")
        throw wrn::Error("--precision-hint applies to --backend openvino");
    if (a.images.empty()) throw wrn::Error("no images given (see --help)");
    if (!a.dump.empty()) check_dump(a);
    return true;
}

std::string percent(double p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * p);
    return buf;
}

int run(Args& a) {
    wrn::Options opts;
    opts.threads = a.threads;
    opts.backend = a.backend;
    opts.precision_hint = a.precision_hint;
    opts.max_batch = a.batch;
    opts.allow_unverified = a.allow_unverified;
    auto clf = wrn::Classifier::open(a.model, opts);
    const wrn::Card& card = clf->card();
    const int classes = static_cast<int>(card.classes.size());

    std::ofstream dump;
    const bool dumping = !a.dump.empty();
    if (!a.dump.empty()) {  // written under a temporary name, renamed into place when complete
        a.dump_tmp = a.dump + ".wrn-tmp." + std::to_string(::getpid());
        dump.open(a.dump_tmp, std::ios::binary | std::ios::trunc);
        if (!dump) throw wrn::Error("cannot write --dump-input file " + a.dump);
    }
    // Images are decoded and run a batch at a time; results are printed only when all succeeded.
    std::vector<float> logits;
    logits.reserve(a.images.size() * classes);
    for (std::size_t start = 0; start < a.images.size(); start += a.batch) {
        const std::size_t stop = std::min(a.images.size(), start + a.batch);
        std::vector<wrn::Image> imgs;
        for (std::size_t i = start; i < stop; ++i) imgs.push_back(wrn::load_image(a.images[i], card));
        std::vector<float> input = clf->input_tensor(imgs);
        if (dumping) {
            dump.write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size() * sizeof(float)));
            if (!dump) throw wrn::Error("cannot write --dump-input file " + a.dump);
        }
        std::vector<float> got = clf->logits(input, static_cast<int>(imgs.size()));
        logits.insert(logits.end(), got.begin(), got.end());
    }
    if (dumping) {
        dump.close();
        if (!dump || std::rename(a.dump_tmp.c_str(), a.dump.c_str()) != 0)
            throw wrn::Error("cannot write --dump-input file " + a.dump);
        a.dump_tmp.clear();
    }

    if (a.json) {
        std::cout << wrn::results_json(*clf, a.model, a.images, logits, a.topk) << "\n";
    } else {
        for (std::size_t i = 0; i < a.images.size(); ++i) {
            std::cout << a.images[i];
            for (const wrn::Scored& s : wrn::top_k(logits.data() + i * classes, classes, a.topk))
                std::cout << "\t" << card.classes[s.index] << " " << percent(s.probability);
            std::cout << "\n";
        }
    }
    std::cout.flush();
    if (!std::cout) throw wrn::Error("cannot write the results to standard output");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    try {
        if (!parse(argc, argv, a)) {
            std::cout << kUsage;
            return 0;
        }
        return run(a);
    } catch (const wrn::Error& e) {
        if (!a.dump_tmp.empty()) std::remove(a.dump_tmp.c_str());
        std::cerr << "wrn-classify: error: " << one_line(e.what()) << "\n";
        return 2;
    } catch (const std::bad_alloc&) {
        if (!a.dump_tmp.empty()) std::remove(a.dump_tmp.c_str());
        std::cerr << "wrn-classify: error: out of memory\n";
        return 3;
    } catch (const std::exception& e) {
        if (!a.dump_tmp.empty()) std::remove(a.dump_tmp.c_str());
        std::cerr << "wrn-classify: error: unexpected: " << one_line(e.what()) << "\n";
        return 3;
    }
}
