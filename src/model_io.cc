#include "model_io.h"

#include <fcntl.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tensor_codec.h"

namespace reinit {

namespace {

constexpr int64_t kKnownIrVersion = 8;
constexpr int64_t kKnownOpset = 17;

std::string Errno() { return std::strerror(errno); }

}  // namespace

onnx::ModelProto ShapeOnlyCopy(const onnx::ModelProto& model) {
  onnx::ModelProto light;
  light.set_ir_version(model.ir_version());
  *light.mutable_opset_import() = model.opset_import();
  *light.mutable_functions() = model.functions();
  light.set_producer_name(model.producer_name());
  const onnx::GraphProto& g = model.graph();
  onnx::GraphProto* lg = light.mutable_graph();
  lg->set_name(g.name());
  *lg->mutable_node() = g.node();
  *lg->mutable_input() = g.input();
  *lg->mutable_output() = g.output();
  *lg->mutable_value_info() = g.value_info();
  *lg->mutable_sparse_initializer() = g.sparse_initializer();
  for (const auto& t : g.initializer()) {
    onnx::TensorProto* c = lg->add_initializer();
    if (!IsSupportedFloatType(t.data_type())) {
      c->CopyFrom(t);  // integer tensors may be shapes that inference reads
      continue;
    }
    c->set_name(t.name());
    c->set_data_type(t.data_type());
    *c->mutable_dims() = t.dims();
  }
  return light;
}

std::unordered_map<std::string, std::vector<int64_t>> StaticShapes(const onnx::ModelProto& model) {
  onnx::ModelProto light = ShapeOnlyCopy(model);
  try {
    onnx::shape_inference::InferShapes(light);
  } catch (const std::exception&) {
    // Best effort: whatever was declared or inferred before the failure is still used.
  }
  std::unordered_map<std::string, std::vector<int64_t>> shapes;
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim()) {
      dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
    shapes.emplace(v.name(), std::move(dims));
  };
  for (const auto& v : light.graph().input()) add(v);
  for (const auto& v : light.graph().value_info()) add(v);
  for (const auto& v : light.graph().output()) add(v);
  return shapes;
}

StatusOr<onnx::ModelProto> LoadModel(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return IoError("cannot open '" + path + "': " + Errno());
  if (S_ISDIR(st.st_mode)) return IoError("'" + path + "' is a directory, not a model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open '" + path + "': " + Errno());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IoError("cannot read '" + path + "': " + Errno());
  if (bytes.empty()) return ModelError("'" + path + "' is empty, not an ONNX model");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) {
    return ModelError("'" + path + "' is not an ONNX model (protobuf parsing failed)");
  }
  if (!model.has_graph()) {
    return ModelError("'" + path + "' is not an ONNX model: it has no graph");
  }
  return model;
}

Status ValidateModel(const onnx::ModelProto& model, const std::string& what,
                     std::vector<std::string>* warnings) {
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (model.ir_version() > kKnownIrVersion || opset > kKnownOpset) {
    warnings->push_back(what + ": IR version " + std::to_string(model.ir_version()) + ", opset " +
                        std::to_string(opset) + " is newer than this onnx library checks (IR " +
                        std::to_string(kKnownIrVersion) + ", opset " + std::to_string(kKnownOpset) +
                        "); written without the checker");
    return Status::Ok();
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return ModelError(what + " fails the ONNX checker: " + e.what());
  }
  onnx::ModelProto light = ShapeOnlyCopy(model);
  try {
    onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1);
    onnx::shape_inference::InferShapes(light, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    return ModelError(what + " fails ONNX shape inference: " + e.what());
  }
  return Status::Ok();
}

Status SaveModelAtomic(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  if (model.ByteSizeLong() > static_cast<size_t>(INT32_MAX) || !model.SerializeToString(&bytes)) {
    return ModelError("cannot serialize the model for '" + path +
                      "': protobuf cannot write a message over 2 GiB (external data is needed)");
  }
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return IoError("cannot create a file beside '" + path + "': " + Errno());
  auto fail = [&](const std::string& what) {
    Status s = IoError(what + " '" + path + "': " + Errno());
    close(fd);
    unlink(tmpl.c_str());
    return s;
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("cannot flush");
  const mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0) return fail("cannot set permissions of");
  if (close(fd) != 0) {
    unlink(tmpl.c_str());
    return IoError("cannot write '" + path + "': " + Errno());
  }
  if (rename(tmpl.c_str(), path.c_str()) != 0) {
    Status s = IoError("cannot rename the temporary file to '" + path + "': " + Errno());
    unlink(tmpl.c_str());
    return s;
  }
  return Status::Ok();
}

}  // namespace reinit
