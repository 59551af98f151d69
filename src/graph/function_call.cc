#include "graph/function_call.h"

#include <string>
#include <unordered_map>

#include "graph/graph_index.h"

namespace reinit {

const onnx::FunctionProto* LocalFunction(const onnx::ModelProto& model,
                                         const onnx::NodeProto& node) {
  for (const auto& f : model.functions()) {
    if (f.name() == node.op_type() && f.domain() == node.domain()) return &f;
  }
  return nullptr;
}

onnx::GraphProto BindCall(const onnx::FunctionProto& fn, const onnx::NodeProto& call) {
  std::unordered_map<std::string, std::string> rename;
  for (int k = 0; k < fn.input_size() && k < call.input_size(); ++k) {
    if (!call.input(k).empty()) rename[fn.input(k)] = call.input(k);
  }
  onnx::GraphProto body;
  body.set_name(fn.name());
  for (const auto& n : fn.node()) {
    onnx::NodeProto* copy = body.add_node();
    copy->CopyFrom(n);
    for (auto& in : *copy->mutable_input()) {
      if (auto it = rename.find(in); it != rename.end()) in = it->second;
    }
    auto* attrs = copy->mutable_attribute();
    for (int a = attrs->size() - 1; a >= 0; --a) {
      if (attrs->Get(a).ref_attr_name().empty()) continue;
      const onnx::AttributeProto* bound = FindAttribute(call, attrs->Get(a).ref_attr_name());
      if (bound) {
        const std::string name = attrs->Get(a).name();
        attrs->Mutable(a)->CopyFrom(*bound);
        attrs->Mutable(a)->set_name(name);
      } else {
        attrs->DeleteSubrange(a, 1);  // the op's default applies
      }
    }
  }
  for (int k = 0; k < fn.input_size(); ++k) {
    if (!rename.count(fn.input(k))) body.add_input()->set_name(fn.input(k));
  }
  for (const auto& out : fn.output()) body.add_output()->set_name(out);
  return body;
}

}  // namespace reinit
