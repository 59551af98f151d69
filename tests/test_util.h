// Helpers for the layers, fans and activation tests: parse a model written inline in ONNX text
// syntax, add initializers of a given shape from C++ (onnx 1.12's text syntax has no node
// names and is awkward for large tensors), and name nodes after their outputs.
#pragma once

#include <gtest/gtest.h>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace reinit_test {

// Parses `text`; a syntax error is a bug in the test, so it aborts with the parser's message.
inline onnx::ModelProto ParseModelOrDie(const std::string& text) {
  onnx::ModelProto model;
  const auto status = onnx::OnnxParser::Parse(model, text.c_str());
  if (!status.IsOK()) {
    std::fprintf(stderr, "ParseModelOrDie: %s\n%s\n", status.ErrorMessage().c_str(), text.c_str());
    std::abort();
  }
  return model;
}

// Adds a zero-filled initializer of the given shape in raw_data. `data_type` is a
// TensorProto::DataType of fixed width (FLOAT, DOUBLE, FLOAT16, INT32, INT64, ...).
inline onnx::TensorProto* AddInitializer(onnx::ModelProto* model, const std::string& name,
                                         const std::vector<int64_t>& dims,
                                         int32_t data_type = onnx::TensorProto::FLOAT) {
  size_t width = 4;
  switch (data_type) {
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT64:
      width = 8;
      break;
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      width = 2;
      break;
    default:
      break;
  }
  auto* t = model->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(data_type);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= d;
  }
  t->set_raw_data(std::string(static_cast<size_t>(n > 0 ? n : 0) * width, '\0'));
  return t;
}

// Adds a FLOAT initializer holding `values` in raw_data.
inline onnx::TensorProto* AddFloatValues(onnx::ModelProto* model, const std::string& name,
                                         const std::vector<int64_t>& dims,
                                         const std::vector<float>& values) {
  auto* t = AddInitializer(model, name, dims);
  EXPECT_EQ(t->raw_data().size(), values.size() * sizeof(float)) << name;
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

// For EXPECT_TRUE(Contains(message, "part")): the failure shows both strings.
inline ::testing::AssertionResult Contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << haystack << "\" does not contain \"" << needle << "\"";
}

// Names every node after its first output, so a graph written as `fc1 = Gemm (...)` has a
// node named "fc1".
inline void NameNodesAfterOutputs(onnx::ModelProto* model) {
  for (auto& node : *model->mutable_graph()->mutable_node()) {
    if (node.output_size() > 0) node.set_name(node.output(0));
  }
}

}  // namespace reinit_test
