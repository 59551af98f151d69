// Small helpers for building ONNX models in tests: a model from ONNX text syntax, and
// initializers added in C++ (values of any size, in any supported storage).
#pragma once

#include <gtest/gtest.h>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <string>
#include <vector>

namespace reinit_test {

inline onnx::ModelProto ParseModel(const std::string& text) {
  onnx::ModelProto model;
  auto status = onnx::OnnxParser::Parse(model, text.c_str());
  EXPECT_TRUE(status.IsOK()) << status.ErrorMessage() << "\n" << text;
  return model;
}

// Adds a FLOAT initializer with raw_data; values default to 0.1·i pattern so they are nonzero.
inline onnx::TensorProto* AddFloatInitializer(onnx::ModelProto* model, const std::string& name,
                                              const std::vector<int64_t>& dims) {
  auto* t = model->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= d;
  }
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = 0.01f * static_cast<float>(i % 97) - 0.3f;
  t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  return t;
}

inline std::vector<float> RawFloats(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / 4);
  std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
  return v;
}

inline const onnx::TensorProto* FindInitializer(const onnx::ModelProto& m,
                                                const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// A model y = act(Gemm(x, w, b)) with w [out, in] (transB = 1), where act is an ONNX op type
// or "" for none. Initializers w and b are added with nonzero values.
inline onnx::ModelProto GemmModel(int64_t in, int64_t out, const std::string& act,
                                  const std::string& act_attrs = "") {
  std::string body = act.empty()
                         ? "y = Gemm <transB = 1> (x, w, b)"
                         : "h = Gemm <transB = 1> (x, w, b)\n y = " + act + act_attrs + " (h)";
  std::string text =
      "<ir_version: 8, opset_import: [\"\" : 17]>\n"
      "g (float[1, " +
      std::to_string(in) + "] x) => (float[1, " + std::to_string(out) + "] y) {\n " + body + "\n}";
  auto model = ParseModel(text);
  AddFloatInitializer(&model, "w", {out, in});
  AddFloatInitializer(&model, "b", {out});
  return model;
}

}  // namespace reinit_test
