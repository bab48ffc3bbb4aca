// Internal: the backends behind wrn::Classifier.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "wrn/wrn.hpp"

namespace wrn {

// Opens an ONNX file with ONNX Runtime (CPU); reads the card from its metadata into `card`.
std::unique_ptr<Backend> open_onnxruntime(const std::string& path, const Options& options, Card& card);

// Opens an ONNX file with OpenVINO's CPU plugin; reads the card from its metadata into `card`.
std::unique_ptr<Backend> open_openvino(const std::string& path, const Options& options, Card& card);

// Builds a TensorRT backend from plan bytes already checked against their manifest.
std::unique_ptr<Backend> open_tensorrt(const std::string& path, const std::vector<char>& plan,
                                       const PlanManifest& manifest, const Options& options);

// Whether each backend was compiled into this build.
bool have_onnxruntime();
bool have_openvino();
bool have_tensorrt();

// The first line of a message from a library (they can span several lines).
std::string first_line(const std::string& text);

}  // namespace wrn
