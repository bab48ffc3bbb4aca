// Images: PNG (libpng) and JPEG (libjpeg) decoding to 8-bit RGB as Pillow's
// Image.open(path).convert("RGB") gives it, Pillow's antialiased bilinear and bicubic resize,
// torchvision's Resize(shorter side) + CenterCrop rule with the sizes the card's preprocess gives,
// and the float tensor. Python's pipeline is wrn_deploy/data/preprocess.py (the card's rule as
// torchvision transforms) and wrn_deploy/data/sources.py (decode_rgb).
#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

#include <jpeglib.h>
#include <png.h>

#include "wrn/wrn.hpp"

namespace wrn {
namespace {

constexpr std::uint64_t kMaxFileBytes = 512ULL << 20;

std::string pixels_limit_message(const std::string& path, std::uint64_t w, std::uint64_t h) {
    return "cannot decode image " + path + ": it is " + std::to_string(w) + "x" + std::to_string(h) +
           ", more pixels than the limit (" + std::to_string(kMaxImagePixels) + ", Pillow's decompression-bomb limit)";
}

// ---------------------------------------------------------------------------------------- PNG --
struct PngReader {
    const unsigned char* data;
    std::size_t size, pos;
    char message[200];
};

extern "C" void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
    auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
    if (n > r->size - r->pos) png_error(png, "the file is truncated");
    std::memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

extern "C" void png_on_error(png_structp png, png_const_charp msg) {
    auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
    std::snprintf(r->message, sizeof r->message, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

extern "C" void png_on_warning(png_structp, png_const_charp) {}

// Only C objects live between setjmp and a possible longjmp; `rgb` and `rows` are sized before
// libpng can jump and only released (by the throw) afterwards.
Image decode_png(const std::vector<char>& file, const std::string& path) {
    PngReader reader{reinterpret_cast<const unsigned char*>(file.data()), file.size(), 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_on_error, png_on_warning);
    if (!png) throw Error("cannot decode image " + path + ": out of memory");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        throw Error("cannot decode image " + path + ": out of memory");
    }
    Image img;
    std::vector<png_bytep> rows;
    std::vector<std::uint8_t> raw;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw Error("cannot decode image " + path + ": " + reader.message);
    }
    png_set_read_fn(png, &reader, png_read_memory);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (static_cast<std::uint64_t>(w) * h > kMaxImagePixels) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw Error(pixels_limit_message(path, w, h));
    }
    // Pillow's convert("RGB"): palette looked up, low bit depths scaled to 8 bits, 16-bit samples
    // keep their high byte, alpha (and tRNS transparency) dropped, grey copied to R, G and B.
    // 16-bit greyscale is the exception: Pillow opens it as "I;16" and clips each value to 255.
    const bool grey16 = depth == 16 && type == PNG_COLOR_TYPE_GRAY;
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !grey16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int channels = png_get_channels(png, info);
    const int sample_bytes = grey16 ? 2 : 1;
    const std::size_t stride = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 * sample_bytes || channels < 1 || channels > 4 ||
        (grey16 && channels != 1) || stride != std::size_t(w) * channels * sample_bytes)
        png_error(png, "unexpected PNG layout after conversion");
    raw.resize(stride * h);
    rows.resize(h);
    for (png_uint_32 y = 0; y < h; ++y) rows[y] = raw.data() + y * stride;
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);

    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    img.rgb.resize(std::size_t(w) * h * 3);
    const std::size_t n = std::size_t(w) * h;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* p = raw.data() + i * channels * sample_bytes;
        std::uint8_t* q = img.rgb.data() + i * 3;
        if (grey16) {  // big-endian samples, as PNG stores them
            const unsigned v = (unsigned(p[0]) << 8) | p[1];
            q[0] = q[1] = q[2] = static_cast<std::uint8_t>(v > 255 ? 255 : v);
        } else if (channels >= 3) {
            q[0] = p[0]; q[1] = p[1]; q[2] = p[2];
        } else {
            q[0] = q[1] = q[2] = p[0];
        }
    }
    return img;
}

// --------------------------------------------------------------------------------------- JPEG --
struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

extern "C" void jpeg_on_error(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
}

// libjpeg only warns about a truncated or damaged stream and fills in the rest; Pillow refuses
// such files ("image file is truncated"), so every warning is an error here too.
extern "C" void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_on_error(cinfo);
}

Image decode_jpeg(const std::vector<char>& file, const std::string& path) {
    jpeg_decompress_struct cinfo;
    JpegError err;
    std::memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    err.message[0] = 0;
    Image img;
    std::vector<std::uint8_t> raw;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        throw Error("cannot decode image " + path + ": " + err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(file.data()), static_cast<unsigned long>(file.size()));
    jpeg_read_header(&cinfo, TRUE);
    const std::uint64_t w = cinfo.image_width, h = cinfo.image_height;
    if (w * h > kMaxImagePixels) {
        jpeg_destroy_decompress(&cinfo);
        throw Error(pixels_limit_message(path, w, h));
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        throw Error("cannot decode image " + path + ": CMYK JPEG is not supported; convert it to RGB");
    }
    // libjpeg's defaults, as Pillow uses them: the accurate integer IDCT and smooth upsampling.
    const bool grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const int channels = cinfo.output_components;
    if ((grey && channels != 1) || (!grey && channels != 3)) jpeg_on_error(reinterpret_cast<j_common_ptr>(&cinfo));
    raw.resize(std::size_t(w) * h * channels);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = raw.data() + std::size_t(cinfo.output_scanline) * w * channels;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    if (channels == 3) {
        img.rgb = std::move(raw);
    } else {
        img.rgb.resize(std::size_t(w) * h * 3);
        for (std::size_t i = 0; i < std::size_t(w) * h; ++i) img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = raw[i];
    }
    return img;
}

// ------------------------------------------------------------------------------------- resize --
// Pillow's resampling (libImaging/Resample.c), bilinear or bicubic filter, 8 bits per sample: per
// output pixel a window of input pixels weighted by the filter stretched by the scale (antialiasing),
// the weights normalised in double precision, turned into 22-bit fixed point, accumulated in
// integers with a rounding half, and clipped to 0..255; two passes, one per axis.
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coefficients {
    int ksize = 0;
    std::vector<int> first, count;   // per output pixel: first input pixel, number of inputs
    std::vector<std::int32_t> weight;  // out_size x ksize, fixed point
};

double triangle(double x) {  // Pillow's bilinear filter, support 1
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

double cubic(double x) {  // Pillow's bicubic filter: Keys' cubic with a = -0.5, support 2
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct Filter {
    double (*weight)(double);
    double support;
};

Filter filter_named(const std::string& interpolation) {
    if (interpolation == "bilinear") return {triangle, 1.0};
    if (interpolation == "bicubic") return {cubic, 2.0};
    throw Error("unknown interpolation '" + interpolation + "' (bilinear or bicubic)");
}

Coefficients coefficients(int in_size, int out_size, const Filter& filter) {
    // Pillow passes the box edges as floats: (float)in_size - 0.0f.
    const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = filter.support * filterscale;
    Coefficients c;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.first.resize(out_size);
    c.count.resize(out_size);
    c.weight.assign(std::size_t(out_size) * c.ksize, 0);
    std::vector<double> k(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = 0.0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            k[x] = filter.weight((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        for (int x = 0; x < xmax; ++x)
            if (ww != 0.0) k[x] /= ww;
        for (int x = 0; x < xmax; ++x) {
            const double v = k[x] * (1 << kPrecisionBits);
            c.weight[std::size_t(xx) * c.ksize + x] = static_cast<std::int32_t>(k[x] < 0 ? -0.5 + v : 0.5 + v);
        }
        c.first[xx] = xmin;
        c.count[xx] = xmax;
    }
    return c;
}

inline std::uint8_t clip8(std::int32_t v) {
    const std::int32_t s = v >> kPrecisionBits;  // arithmetic shift, as in Pillow's lookup table
    return static_cast<std::uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));
}

// One pass along rows (horizontal) or columns (vertical) of an RGB image.
Image resample_pass(const Image& in, int out_w, int out_h, const Coefficients& c, bool horizontal) {
    Image out;
    out.width = out_w;
    out.height = out_h;
    out.rgb.resize(std::size_t(out_w) * out_h * 3);
    for (int y = 0; y < out_h; ++y) {
        for (int x = 0; x < out_w; ++x) {
            const int o = horizontal ? x : y;
            const std::int32_t* k = &c.weight[std::size_t(o) * c.ksize];
            std::int32_t acc[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1)};
            for (int t = 0; t < c.count[o]; ++t) {
                const int sx = horizontal ? c.first[o] + t : x, sy = horizontal ? y : c.first[o] + t;
                const std::uint8_t* p = &in.rgb[(std::size_t(sy) * in.width + sx) * 3];
                for (int ch = 0; ch < 3; ++ch) acc[ch] += static_cast<std::int32_t>(p[ch]) * k[t];
            }
            std::uint8_t* q = &out.rgb[(std::size_t(y) * out_w + x) * 3];
            for (int ch = 0; ch < 3; ++ch) q[ch] = clip8(acc[ch]);
        }
    }
    return out;
}

// Python's round(): halves go to the even neighbour (torchvision's CenterCrop uses it).
int python_round_half(int twice) {  // round(twice / 2.0)
    const int half = twice / 2;
    if (twice % 2 == 0) return half;
    return (half % 2 == 0) ? half : half + 1;
}

}  // namespace

Image decode_image(const std::string& path) {
    const std::vector<char> file = read_file(path, kMaxFileBytes, "image");
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (file.size() >= 8 && std::memcmp(file.data(), png_sig, 8) == 0) return decode_png(file, path);
    if (file.size() >= 3 && static_cast<unsigned char>(file[0]) == 0xff &&
        static_cast<unsigned char>(file[1]) == 0xd8 && static_cast<unsigned char>(file[2]) == 0xff)
        return decode_jpeg(file, path);
    throw Error("cannot decode image " + path + ": not a PNG or JPEG file (this program reads those two formats)");
}

Image resize(const Image& in, int width, int height, const std::string& interpolation) {
    if (width < 1 || height < 1 || in.width < 1 || in.height < 1) throw Error("resize to an empty image");
    const Filter filter = filter_named(interpolation);
    if (width == in.width && height == in.height) return in;  // Pillow returns a copy
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice what the
    // width does (earlier Pillow versions always went horizontal first); the intermediate image is
    // rounded to 8 bits, so the order shows in the result.
    const int dh = in.height - height, dw = in.width - width;
    const bool vertical_first = dh > 0 && dh > dw * 2;
    Image cur = in;
    if (vertical_first) {
        cur = resample_pass(cur, cur.width, height, coefficients(in.height, height, filter), false);
        if (width != in.width) cur = resample_pass(cur, width, height, coefficients(in.width, width, filter), true);
    } else {
        if (width != in.width) cur = resample_pass(cur, width, cur.height, coefficients(in.width, width, filter), true);
        if (height != in.height) cur = resample_pass(cur, width, height, coefficients(in.height, height, filter), false);
    }
    return cur;
}

Image resize_bilinear(const Image& in, int width, int height) { return resize(in, width, height, "bilinear"); }

Image fit_to_model(const Image& img, const Card& card, const std::string& where) {
    const int size = card.input_size, w = img.width, h = img.height;
    if (card.resize == 0) {
        if (w != size || h != size)
            throw Error(where + " is " + std::to_string(w) + "x" + std::to_string(h) + "; the model takes " +
                        std::to_string(size) + "x" + std::to_string(size) +
                        " images as they are (its card's preprocess has no resize)");
        return img;
    }
    // torchvision Resize(s): the short side to s, the long side int(s * long / short) (truncated).
    const int s = card.resize;
    const int shorter = std::min(w, h), longer = std::max(w, h);
    const double scaled = static_cast<double>(static_cast<long long>(s) * longer) / shorter;
    if (scaled * s > static_cast<double>(kMaxImagePixels))
        throw Error(where + " is " + std::to_string(w) + "x" + std::to_string(h) +
                    ": resizing its short side to " + std::to_string(s) + " would make an image too large to hold");
    const int new_long = static_cast<int>(scaled);
    const int new_w = w <= h ? s : new_long, new_h = w <= h ? new_long : s;
    Image r = (new_w == w && new_h == h) ? img : resize(img, new_w, new_h, card.interpolation);
    // torchvision CenterCrop(size): offsets int(round((dim - size) / 2.0)); never pads, as the card
    // holds resize >= input_size.
    const int top = python_round_half(r.height - size), left = python_round_half(r.width - size);
    Image out;
    out.width = out.height = size;
    out.rgb.resize(std::size_t(size) * size * 3);
    for (int y = 0; y < size; ++y)
        std::memcpy(&out.rgb[std::size_t(y) * size * 3], &r.rgb[(std::size_t(y + top) * r.width + left) * 3],
                    std::size_t(size) * 3);
    return out;
}

Image load_image(const std::string& path, const Card& card) {
    return fit_to_model(decode_image(path), card, path);
}

void to_tensor(const Image& img, const Card& card, std::vector<float>& out) {
    const int S = card.input_size;
    if (img.width != S || img.height != S)
        throw Error("image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                    ", the model takes " + std::to_string(S) + "x" + std::to_string(S) + " (use load_image or fit_to_model)");
    const std::size_t plane = std::size_t(S) * S, base = out.size();
    out.resize(base + 3 * plane);
    for (std::size_t i = 0; i < plane; ++i) {
        for (int c = 0; c < 3; ++c) {
            float v = static_cast<float>(img.rgb[3 * i + c]) / 255.0f;  // ToTensor / .float().div(255)
            if (!card.normalized_in_graph) v = (v - card.mean[c]) / card.std[c];  // arch/normalize.py
            out[base + c * plane + i] = v;
        }
    }
}

}  // namespace wrn
