// The card and the plan manifest, read with nlohmann/json and checked field by field, as
// wrn_deploy/card.py and wrn_deploy/plan_trust.py do on the Python side.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "wrn/wrn.hpp"

namespace wrn {

using nlohmann::json;

namespace {

constexpr const char* kCardFormat = "wrn-deploy.card/2";
constexpr const char* kManifestFormat = "wrn-deploy.engine/1";
constexpr std::uint64_t kMaxManifestBytes = 4ULL << 20;

std::string short_text(const std::string& s) {
    std::string out;
    for (char c : s.substr(0, 60)) out += (c == '\n' || c == '\r') ? ' ' : c;
    return out;
}

const json& field(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) throw Error(where + ": the card is malformed (no '" + key + "')");
    return *it;
}

std::string text_field(const json& obj, const char* key, const std::string& where) {
    const json& v = field(obj, key, where);
    if (!v.is_string()) throw Error(where + ": the card is malformed ('" + key + "' is not a string)");
    return v.get<std::string>();
}

std::array<float, 3> three_numbers(const json& obj, const char* key, const std::string& where) {
    const json& v = field(obj, key, where);
    std::array<float, 3> out{};
    if (!v.is_array() || v.size() != 3) throw Error(where + ": the card is invalid: " + key + " must be three numbers");
    for (int i = 0; i < 3; ++i) {
        if (!v[i].is_number()) throw Error(where + ": the card is invalid: " + key + " must be three numbers");
        double d = v[i].get<double>();
        if (!std::isfinite(d)) throw Error(where + ": the card is invalid: " + key + " must be finite");
        out[i] = static_cast<float>(d);  // Python: torch.tensor(mean, dtype=float32)
    }
    return out;
}

// A class name lands in labels, one-line text output and JSON: no control characters, no Unicode
// line/paragraph separators, bidirectional overrides or invisible format characters (the rule of
// wrn_deploy/card.py's check_class_names), no surrounding spaces.
bool safe_class_name(const std::string& name) {
    if (name.empty() || name.front() == ' ' || name.back() == ' ') return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7f) return false;
        if (c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) >= 0x80 &&
            static_cast<unsigned char>(name[i + 1]) <= 0x9F)
            return false;  // C1 controls (U+0080..U+009F), U+0085 NEL among them
        if (c == 0xE2 && i + 2 < name.size()) {
            const unsigned char b = static_cast<unsigned char>(name[i + 1]), d = static_cast<unsigned char>(name[i + 2]);
            // U+200B..U+200F, U+2028..U+202E, U+2060..U+2069
            if (b == 0x80 && ((d >= 0x8B && d <= 0x8F) || (d >= 0xA8 && d <= 0xAE))) return false;
            if (b == 0x81 && d >= 0xA0 && d <= 0xA9) return false;
        }
        if (c == 0xEF && i + 2 < name.size() && static_cast<unsigned char>(name[i + 1]) == 0xBB &&
            static_cast<unsigned char>(name[i + 2]) == 0xBF)
            return false;  // U+FEFF
    }
    return true;
}

// The card's "preprocess" object (wrn_deploy.card.Preprocess), or the legacy rule without one.
void read_preprocess(const json& d, const std::string& where, Card& c) {
    auto it = d.find("preprocess");
    if (it == d.end() || it->is_null()) {
        c.resize = c.input_size >= 64 ? static_cast<int>(c.input_size * 256.0 / 224.0) : 0;
        c.interpolation = "bilinear";
        return;
    }
    if (!it->is_object()) throw Error(where + ": the card is malformed ('preprocess' is not an object)");
    for (const auto& item : it->items())
        if (item.key() != "resize" && item.key() != "interpolation")
            throw Error(where + ": the card is malformed (unknown preprocess field '" + short_text(item.key()) + "')");
    auto resize = it->find("resize");
    if (resize != it->end() && !resize->is_null()) {
        if (!resize->is_number_integer() || resize->get<long long>() < c.input_size ||
            resize->get<long long>() > kMaxInputSize)
            throw Error(where + ": the card is invalid: preprocess.resize must be null or an integer from input_size (" +
                        std::to_string(c.input_size) + ") to " + std::to_string(kMaxInputSize) + ", got " +
                        short_text(resize->dump()));
        c.resize = static_cast<int>(resize->get<long long>());
    } else {
        c.resize = 0;
    }
    auto interp = it->find("interpolation");
    c.interpolation = "bilinear";
    if (interp != it->end()) {
        if (!interp->is_string() || (interp->get<std::string>() != "bilinear" && interp->get<std::string>() != "bicubic"))
            throw Error(where + ": the card is invalid: preprocess.interpolation must be \"bilinear\" or \"bicubic\", got " +
                        short_text(interp->dump()));
        c.interpolation = interp->get<std::string>();
    }
}

}  // namespace

namespace {

Card card_from(const json& d, const std::string& where) {
    if (!d.is_object()) throw Error(where + ": the card is not a JSON object");
    auto fmt = d.find("format");
    if (fmt == d.end() || !fmt->is_string() || fmt->get<std::string>() != kCardFormat)
        throw Error(where + ": card format is not '" + kCardFormat + "' (made by another wrn-deploy version?)");
    Card c;
    c.kind = text_field(d, "kind", where);
    c.arch = text_field(d, "arch", where);
    c.precision = text_field(d, "precision", where);
    const json& classes = field(d, "classes", where);
    if (!classes.is_array() || classes.empty())
        throw Error(where + ": the card is invalid: classes must be a non-empty list of names");
    for (const json& name : classes) {
        if (!name.is_string()) throw Error(where + ": the card is invalid: classes must be a non-empty list of names");
        if (!safe_class_name(name.get<std::string>()))
            throw Error(where + ": the card is invalid: class " + std::to_string(c.classes.size()) +
                        " has control, separator or invisible characters (or surrounding spaces)");
        c.classes.push_back(name.get<std::string>());
    }
    auto num = d.find("num_classes");
    if (num != d.end() && !(num->is_number_integer() && num->get<long long>() == static_cast<long long>(c.classes.size())))
        throw Error(where + ": the card is invalid: num_classes does not match its " +
                    std::to_string(c.classes.size()) + " class names");
    const json& size = field(d, "input_size", where);
    if (!size.is_number_integer() || size.get<long long>() < 1 || size.get<long long>() > kMaxInputSize)
        throw Error(where + ": the card is invalid: input_size must be an integer from 1 to " +
                    std::to_string(kMaxInputSize) + ", got " + short_text(size.dump()));
    c.input_size = static_cast<int>(size.get<long long>());
    c.mean = three_numbers(d, "mean", where);
    c.std = three_numbers(d, "std", where);
    for (float s : c.std)
        if (!(s > 0.0f)) throw Error(where + ": the card is invalid: std must be positive");

    const json& in = field(d, "input", where);
    if (!in.is_object()) throw Error(where + ": the card is malformed ('input' is not an object)");
    c.input_name = text_field(in, "name", where);
    std::string layout = text_field(in, "layout", where), color = text_field(in, "color", where);
    c.input_dtype = text_field(in, "dtype", where);
    if (layout != "NCHW" || color != "RGB")
        throw Error(where + ": the model takes " + short_text(layout) + " " + short_text(color) +
                    " input; this program feeds NCHW RGB only");
    if (c.input_dtype != "float32")
        throw Error(where + ": the model takes " + short_text(c.input_dtype) +
                    " input; this program feeds float32 (export without --fp16-io)");
    const json& range = field(in, "value_range", where);
    if (!range.is_array() || range.size() != 2 || !range[0].is_number() || !range[1].is_number() ||
        range[0].get<double>() != 0.0 || range[1].get<double>() != 1.0)
        throw Error(where + ": the model's input value_range is not [0, 1]; this program feeds RGB in [0, 1]");
    const json& norm = field(in, "normalized_in_graph", where);
    if (!norm.is_boolean()) throw Error(where + ": the card is malformed (normalized_in_graph is not true/false)");
    c.normalized_in_graph = norm.get<bool>();
    auto batch = in.find("batch");
    if (batch != in.end() && !batch->is_null()) {
        if (!batch->is_number_integer() || batch->get<long long>() < 1 || batch->get<long long>() > 4096)
            throw Error(where + ": the card is invalid: input.batch must be null or an integer from 1 to 4096");
        c.fixed_batch = static_cast<int>(batch->get<long long>());
    }
    read_preprocess(d, where, c);
    return c;
}

}  // namespace

Card Card::from_json(const std::string& text, const std::string& where) {
    json d = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (d.is_discarded()) throw Error(where + ": the card is not valid JSON");
    return card_from(d, where);
}


std::vector<char> read_file(const std::string& path, std::uint64_t max_bytes, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error(what + " " + path + " does not exist");
    if (!S_ISREG(st.st_mode)) throw Error(what + " " + path + " is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        throw Error(what + " " + path + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                    std::to_string(max_bytes) + " this program reads");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot open " + what + " " + path);
    std::vector<char> data;
    data.reserve(static_cast<std::size_t>(st.st_size));
    char buf[1 << 16];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
        data.insert(data.end(), buf, buf + f.gcount());
        if (data.size() > max_bytes) throw Error(what + " " + path + " grew while it was read");
    }
    if (f.bad()) throw Error("cannot read " + what + " " + path);
    return data;
}

PlanManifest check_plan(const std::string& plan_path, const std::vector<char>& plan_bytes, bool allow_unverified) {
    const std::string man_path = plan_path + ".json";
    struct stat st {};
    if (::stat(man_path.c_str(), &st) != 0)
        throw Error(plan_path + " has no manifest (" + man_path + "), so its size and sha256 cannot be checked and "
                    "its card is unknown; refusing to load it (--allow-unverified does not help: this program "
                    "needs the card)");
    std::vector<char> raw = read_file(man_path, kMaxManifestBytes, "manifest");
    json m = json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) throw Error(man_path + " is not valid UTF-8 JSON");
    if (!m.is_object() || !m.contains("format") || m["format"] != kManifestFormat)
        throw Error(man_path + " is not a wrn-deploy engine manifest");
    auto need = [&](const char* key, json::value_t type) -> const json& {
        auto it = m.find(key);
        bool ok = it != m.end() &&
                  (it->type() == type || (type == json::value_t::number_integer && it->is_number_unsigned()));
        if (!ok) throw Error(man_path + ": '" + key + "' is missing or of the wrong type; the manifest is damaged");
        return *it;
    };
    PlanManifest out;
    out.tensorrt_version = need("tensorrt_version", json::value_t::string).get<std::string>();
    out.gpu = need("gpu", json::value_t::string).get<std::string>();
    const json& cc = need("compute_capability", json::value_t::array);
    if (cc.size() != 2 || !cc[0].is_number_integer() || !cc[1].is_number_integer())
        throw Error(man_path + ": compute_capability must be two integers");
    out.compute_capability[0] = cc[0].get<int>();
    out.compute_capability[1] = cc[1].get<int>();
    const json& build = need("build", json::value_t::object);
    if (build.contains("version_compatible") && build["version_compatible"].is_boolean())
        out.version_compatible = build["version_compatible"].get<bool>();
    for (const char* key : {"hw_compat", "hardware_compatibility"})
        if (build.contains(key) && build[key].is_string()) {
            out.hw_compat = build[key].get<std::string>();
            break;
        }
    const std::string want_sha = need("plan_sha256", json::value_t::string).get<std::string>();
    const json& want_size = need("plan_bytes", json::value_t::number_integer);
    if (want_size.get<long long>() < 0) throw Error(man_path + ": plan_bytes is negative; the manifest is damaged");
    const json& card = need("card", json::value_t::object);

    // The same order and wording as wrn_deploy.plan_trust.integrity_problem: size, then hash,
    // over exactly the bytes that will be deserialized.
    std::string problem;
    if (static_cast<unsigned long long>(want_size.get<long long>()) != plan_bytes.size())
        problem = plan_path + " is " + std::to_string(plan_bytes.size()) + " bytes but its manifest says " +
                  std::to_string(want_size.get<long long>()) + ": truncated or replaced";
    else if (sha256_hex(plan_bytes.data(), plan_bytes.size()) != want_sha)
        problem = plan_path + " does not match the sha256 in its manifest: modified";
    if (!problem.empty() && !allow_unverified)
        throw Error(problem + "; refusing to load it (--allow-unverified accepts the risk)");
    if (!problem.empty()) {
        for (char& ch : problem)
            if (ch == '\n' || ch == '\r') ch = ' ';
        std::fprintf(stderr, "wrn-classify: warning: %s; loading it unverified (--allow-unverified)\n", problem.c_str());
    }
    struct stat sig {};
    if (::stat((plan_path + ".sig").c_str(), &sig) == 0)
        throw Error(plan_path + " is signed (" + plan_path + ".sig) and this program cannot verify signatures; "
                    "check it with `wrn-deploy` or remove the signature file deliberately");
    out.card = card_from(card, man_path);
    if (out.card.kind != "plan")
        throw Error(man_path + ": its card describes a " + out.card.kind + ", but the file is a plan");
    return out;
}

std::string results_json(const Classifier& classifier, const std::string& model,
                         const std::vector<std::string>& names, const std::vector<float>& logits, int k) {
    const Card& card = classifier.card();
    const std::size_t classes = card.classes.size();
    if (logits.size() != names.size() * classes) throw Error("results_json: one row of logits per image is needed");
    json out = {{"model", model}, {"backend", classifier.backend_name()}, {"arch", card.arch},
                {"precision", card.precision}, {"input_size", card.input_size},
                {"normalized_in_graph", card.normalized_in_graph}, {"images", json::array()}};
    for (std::size_t i = 0; i < names.size(); ++i) {
        const float* row = logits.data() + i * classes;
        json top = json::array();
        for (const Scored& s : top_k(row, static_cast<int>(classes), k))
            top.push_back({{"index", s.index}, {"class", card.classes[s.index]}, {"logit", s.logit},
                           {"probability", s.probability}});
        out["images"].push_back({{"path", names[i]}, {"top", top}, {"logits", std::vector<float>(row, row + classes)}});
    }
    // Invalid UTF-8 in a file or class name becomes U+FFFD instead of an exception.
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<Scored> top_k(const float* logits, int classes, int k) {
    std::vector<int> idx(static_cast<std::size_t>(classes));
    for (int i = 0; i < classes; ++i) idx[i] = i;
    k = std::max(0, std::min(k, classes));
    auto key = [&](int i) { return std::isnan(logits[i]) ? -INFINITY : logits[i]; };
    auto better = [&](int a, int b) { return key(a) > key(b) || (key(a) == key(b) && a < b); };
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
    double mx = -INFINITY;
    for (int i = 0; i < classes; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
    double sum = 0.0;
    for (int i = 0; i < classes; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
    std::vector<Scored> out;
    for (int j = 0; j < k; ++j)
        out.push_back({idx[j], logits[idx[j]], std::exp(static_cast<double>(logits[idx[j]]) - mx) / sum});
    return out;
}

}  // namespace wrn
