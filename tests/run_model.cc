// run_model: runs a model through the reference executor on inputs read from .npy files and
// writes every graph output as a .npy file, so that a script can compare the executor with
// another runtime (tests/torch_executor.py compares it with PyTorch). A test tool, not part of
// reinit.
//
// Usage: run_model MODEL.onnx OUT_DIR NAME=IN.npy...
// Writes OUT_DIR/<output name>.npy for each graph output ('/' in a name becomes '_'): float32
// ('<f4'), int64 ('<i8') or bool ('|b1'), C order, format version 1.0.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "io/model_io.h"
#include "signal/executor/executor.h"
#include "signal/npy.h"

namespace {

using reinit::exec::DType;
using reinit::exec::Tensor;

int Fail(const std::string& message) {
  std::cerr << "run_model: error: " << message << "\n";
  return 1;
}

// A .npy v1.0 file: magic, version, little-endian header length, then the header dict padded
// with spaces and ended by '\n' so that magic + length + header is a multiple of 64 bytes.
std::string NpyBytes(const Tensor& t) {
  const char* descr = t.type == DType::kFloat ? "<f4" : t.type == DType::kInt64 ? "<i8" : "|b1";
  std::string shape = "(";
  for (size_t k = 0; k < t.shape.size(); ++k) {
    shape += std::to_string(t.shape[k]) + (t.shape.size() == 1 ? "," : "");
    if (k + 1 < t.shape.size()) shape += ", ";
  }
  shape += ")";
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  if (t.type == DType::kFloat) {
    out.append(reinterpret_cast<const char*>(t.f.data()), t.f.size() * sizeof(float));
  } else if (t.type == DType::kInt64) {
    out.append(reinterpret_cast<const char*>(t.i.data()), t.i.size() * sizeof(int64_t));
  } else {
    for (int64_t v : t.i) out += static_cast<char>(v != 0);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: run_model MODEL.onnx OUT_DIR NAME=IN.npy...\n";
    return 2;
  }
  const std::string out_dir = argv[2];
  auto model = reinit::LoadModel(argv[1]);
  if (!model.ok()) return Fail(model.status().message());
  auto executor = reinit::exec::Executor::Create(*model);
  if (!executor.ok()) return Fail(executor.status().message());

  std::map<std::string, Tensor> feeds;
  for (int k = 3; k < argc; ++k) {
    const std::string spec = argv[k];
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("expected NAME=FILE.npy: " + spec);
    auto value = reinit::ReadNpy(spec.substr(eq + 1));
    if (!value.ok()) return Fail(value.status().message());
    feeds[spec.substr(0, eq)] = std::move(*value);
  }

  auto outputs = (*executor)->Run(feeds);
  if (!outputs.ok()) return Fail(outputs.status().message());
  for (const auto& [name, tensor] : *outputs) {
    std::string file = name;
    for (char& c : file) {
      if (c == '/') c = '_';
    }
    const std::string path = out_dir + "/" + file + ".npy";
    std::ofstream f(path, std::ios::binary);
    const std::string bytes = NpyBytes(tensor);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f.flush()) return Fail("cannot write " + path);
  }
  return 0;
}
