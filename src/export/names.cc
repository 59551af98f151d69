#include "export/names.h"

#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "graph/graph_index.h"
#include "io/tensor_codec.h"

namespace reinit {

namespace {

// --- shared: the graph's float tensors and who reads them ------------------------------------

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t next; (next = s.find(sep, at)) != std::string::npos; at = next + 1) {
    out.push_back(s.substr(at, next - at));
  }
  out.push_back(s.substr(at));
  return out;
}

// The float types export writes: FLOAT, FLOAT16, BFLOAT16 and DOUBLE. FLOAT8 and FLOAT4
// tensors, which reinit can draw, are not exported (nor listed as unmapped).
bool IsExportedType(int32_t data_type) {
  return data_type == onnx::TensorProto::FLOAT || data_type == onnx::TensorProto::FLOAT16 ||
         data_type == onnx::TensorProto::BFLOAT16 || data_type == onnx::TensorProto::DOUBLE;
}

bool IsNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string ShapeText(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s + "]";
}

int64_t IntAttribute(const onnx::NodeProto& node, const char* name, int64_t fallback) {
  const auto* a = FindAttribute(node, name);
  return a ? a->i() : fallback;
}

std::vector<int64_t> Dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

Transform Whole(const onnx::TensorProto& t) { return {{}, Dims(t), {}, "none"}; }

Transform Transposed(const onnx::TensorProto& t, std::vector<int64_t> perm, std::string why) {
  return {{}, Dims(t), perm, "transpose " + ShapeText(perm) + why};
}

// One read of a stored float tensor by a node: input `input` of node `node` reads `reads`,
// which is `source` itself or an Identity (chain) of it.
struct Slot {
  int node;
  int input;
  std::string reads;
  std::string source;
  const onnx::TensorProto* tensor;
};

// Collects the named tensors and the unmapped ones, each name once.
class Mapper {
 public:
  Mapper(const onnx::ModelProto& model, std::function<bool(const std::string&)> redrawn)
      : model_(model), index_(model.graph()), redrawn_(std::move(redrawn)) {}

  const GraphIndex& index() const { return index_; }
  bool Redrawn(const std::string& source) const { return redrawn_ && redrawn_(source); }

  // Follows Identity nodes back from `name` to a stored float tensor; "" if it is none.
  std::string Source(std::string name) const {
    for (int p; (p = index_.Producer(name)) >= 0 && index_.node(p).op_type() == "Identity";) {
      name = index_.node(p).input(0);
    }
    const onnx::TensorProto* t = index_.ConstantTensor(name);
    return t && IsExportedType(t->data_type()) ? name : "";
  }

  // Every input of every node of the main graph that reads a stored float tensor.
  std::vector<Slot> Slots() const {
    std::vector<Slot> slots;
    for (int n = 0; n < index_.node_count(); ++n) {
      const auto& node = index_.node(n);
      for (int i = 0; i < node.input_size(); ++i) {
        if (node.input(i).empty()) continue;
        const std::string source = Source(node.input(i));
        if (source.empty()) continue;
        slots.push_back({n, i, node.input(i), source, index_.ConstantTensor(source)});
      }
    }
    return slots;
  }

  void Add(NamedTensor t) {
    auto it = by_name_.find(t.name);
    if (it != by_name_.end()) {
      const NamedTensor& first = result_.tensors[it->second];
      if (first.source == t.source && first.transform.text == t.transform.text) return;
      Unmap({"conflict", t.source, t.name, t.node,
             "the name is already given to '" + first.source + "'"});
      return;
    }
    by_name_[t.name] = result_.tensors.size();
    covered_.insert(t.source);
    result_.tensors.push_back(std::move(t));
  }
  bool Has(const std::string& name) const { return by_name_.count(name) > 0; }

  void Unmap(UnmappedTensor u) {
    // A constant no rule names is listed once, at its first reader.
    const std::string key = u.kind == "no_rule"
                                ? u.kind + "\n" + u.source
                                : u.kind + "\n" + u.source + "\n" + u.name + "\n" + u.node;
    if (!unmapped_keys_.insert(key).second) return;
    result_.unmapped.push_back(std::move(u));
  }

  // A constant that no rule names. Constant nodes' values are the graph's own constants
  // (scalars of an activation's formula), not parameters: only initializers are listed.
  void NoRule(const Slot& s, const std::string& why) {
    if (index_.Initializer(s.source) == nullptr) return;
    Unmap({"no_rule", s.reads, "", index_.NodeName(s.node), Through(s, why)});
  }

  // `why`, and where the node reads the tensor through an Identity, of which tensor.
  static std::string Through(const Slot& s, const std::string& why) {
    return s.reads == s.source
               ? why
               : why + " (it reads '" + s.reads + "', an Identity of '" + s.source + "')";
  }

  void Warn(std::string w) { result_.warnings.push_back(std::move(w)); }

  // Lists every float initializer that got no name and no reason yet.
  NameMapping Finish(const char* style) {
    std::set<std::string> listed;
    for (const auto& u : result_.unmapped) listed.insert(u.source);
    for (const auto& init : model_.graph().initializer()) {
      if (!IsExportedType(init.data_type())) continue;
      if (covered_.count(init.name()) || listed.count(init.name())) continue;
      const auto& users = index_.Consumers(init.name());
      const std::string why = users.empty()
                                  ? "read by no node of the main graph"
                                  : "no " + std::string(style) + " naming rule for " +
                                        index_.Describe(users.front()) + ", which reads it";
      result_.unmapped.push_back({"no_rule", init.name(), "", "", why});
    }
    return std::move(result_);
  }

  std::vector<NamedTensor>& tensors() { return result_.tensors; }

 private:
  const onnx::ModelProto& model_;
  GraphIndex index_;
  std::function<bool(const std::string&)> redrawn_;
  NameMapping result_;
  std::map<std::string, size_t> by_name_;
  std::set<std::string> covered_;
  std::set<std::string> unmapped_keys_;
};

// --- onnx: the initializers as they are -----------------------------------------------------

void MapOnnx(const onnx::ModelProto& model, Mapper* m) {
  for (const auto& init : model.graph().initializer()) {
    if (IsExportedType(init.data_type())) {
      m->Add({init.name(), init.name(), init.name(), "", "", Whole(init)});
    }
  }
}

// --- torch: state_dict keys -----------------------------------------------------------------

// A state_dict key: module names (any text without '.') joined by '.' ("layer1.0.conv1.weight",
// "trunk_output.block1.block1-0.f.se.fc1.bias"). The names torch.onnx generates hold ':' or
// '/' ("onnx::Conv_193", "/conv1/Constant_output_0"), or, before torch 1.9, are numbers.
bool IsTorchName(const std::string& s) {
  if (s.empty() || IsNumber(s) || s.find_first_of(":/ ") != std::string::npos) return false;
  for (const std::string& atom : Split(s, '.')) {
    if (atom.empty()) return false;
  }
  return true;
}

// The module a node was exported from. torch.onnx (1.13) names a node by the scopes of the
// modules called on the way to it, one per called module, each the module's qualified name
// from its last non-numeric atom on: layer1.0.conv1 -> /layer1/layer1.0/conv1/Conv,
// encoder.layers.0 (a ModuleList that is only iterated, no scope of its own) ->
// /encoder/layers.0/..., features.0.0 -> /features/features.0/features.0.0/... So a scope
// "a.3" whose first atom is the last non-numeric atom of the path so far continues it; any
// other scope appends its atoms.
std::optional<std::string> TorchModule(const std::string& node_name) {
  if (node_name.size() < 2 || node_name[0] != '/') return std::nullopt;
  std::vector<std::string> scopes;
  for (const auto& s : Split(node_name.substr(1), '/')) {
    if (!s.empty()) scopes.push_back(s);
  }
  if (scopes.size() < 2) return std::nullopt;
  scopes.pop_back();  // the op's own name
  std::vector<std::string> atoms;
  for (const auto& scope : scopes) {
    const std::vector<std::string> part = Split(scope, '.');
    size_t i = atoms.size();
    while (i > 0 && IsNumber(atoms[i - 1])) --i;
    bool continues =
        part.size() > 1 && i > 0 && atoms[i - 1] == part[0] && atoms.size() - i < part.size();
    for (size_t k = i; continues && k < atoms.size(); ++k) continues = atoms[k] == part[k - i + 1];
    if (continues) atoms.resize(i - 1);
    atoms.insert(atoms.end(), part.begin(), part.end());
  }
  std::string out;
  for (const auto& a : atoms) {
    if (!out.empty()) out += '.';
    out += a;
  }
  return out;
}

// The parameter names of a node's inputs, by op: one row per (op, input). The ops whose
// tensors need more than a name (Conv's folded BatchNorm, MatMul's transposed Linear weight,
// the recurrent ops' gates and directions) have their own rules below.
struct TorchRole {
  const char* op;
  int input;
  const char* attribute;
};
constexpr TorchRole kTorchRoles[] = {
    {"Conv", 1, "weight"},
    {"Conv", 2, "bias"},
    {"ConvTranspose", 1, "weight"},
    {"ConvTranspose", 2, "bias"},
    {"Gemm", 1, "weight"},
    {"Gemm", 2, "bias"},
    {"MatMul", 1, "weight"},
    {"BatchNormalization", 1, "weight"},
    {"BatchNormalization", 2, "bias"},
    {"BatchNormalization", 3, "running_mean"},
    {"BatchNormalization", 4, "running_var"},
    {"InstanceNormalization", 1, "weight"},
    {"InstanceNormalization", 2, "bias"},
    {"LayerNormalization", 1, "weight"},
    {"LayerNormalization", 2, "bias"},
    {"GroupNormalization", 1, "weight"},
    {"GroupNormalization", 2, "bias"},
    {"Gather", 0, "weight"},
};

const char* TorchAttribute(const std::string& op, int input) {
  for (const auto& r : kTorchRoles) {
    if (op == r.op && input == r.input) return r.attribute;
  }
  return nullptr;
}

// The recurrent ops: gates per hidden unit, and torch's gate order as indices of ONNX's.
// torch.onnx's reform_weights writes LSTM's i,f,g,o as ONNX's i,o,f,c and GRU's r,z,n as
// z,r,h: torch gate k is ONNX gate order[k].
struct RecurrentRule {
  const char* op;
  int gates;
  std::vector<int> order;
  const char* text;
};
const RecurrentRule* FindRecurrent(const std::string& op) {
  static const RecurrentRule kRules[] = {
      {"LSTM", 4, {0, 2, 3, 1}, "gates ONNX i,o,f,c -> torch i,f,g,o"},
      {"GRU", 3, {1, 0, 2}, "gates ONNX z,r,h -> torch r,z,n"},
      {"RNN", 1, {0}, ""},
  };
  for (const auto& r : kRules) {
    if (op == r.op) return &r;
  }
  return nullptr;
}

class TorchNames {
 public:
  explicit TorchNames(Mapper* m) : m_(*m), index_(m->index()) {}

  void Run(const onnx::ModelProto& model) {
    if (model.producer_name() != "pytorch") {
      m_.Warn("the model was produced by '" + model.producer_name() +
              "', not pytorch: --names torch reads torch.onnx's naming");
    }
    for (const Slot& s : m_.Slots()) Map(s);
    // Parameters read only where no slot reaches (a subgraph, nowhere): still state_dict keys.
    for (const auto& init : model.graph().initializer()) {
      if (IsExportedType(init.data_type()) && IsTorchName(init.name())) {
        m_.Add({init.name(), init.name(), init.name(), "", "", Whole(init)});
      }
    }
    ListTied();
    AddBatchCounters();
  }

 private:
  void Map(const Slot& s) {
    const auto& node = index_.node(s.node);
    const std::string op = node.op_type();
    const char* attribute = TorchAttribute(op, s.input);
    // torch.onnx keeps a parameter's name when it writes its values unchanged, also for the
    // Identity through which it shares equal-valued tensors.
    if (IsTorchName(s.reads)) {
      m_.Add({s.reads, s.source, s.reads, "", attribute ? attribute : "", Whole(*s.tensor)});
      return;
    }
    if (op == "Identity") return;  // its consumers name what it carries
    if (FindRecurrent(op)) return MapRecurrent(s);
    const std::string node_name = index_.NodeName(s.node);
    const auto module = TorchModule(node.name());
    if (op == "Add") return MapLinearBias(s);
    if (!attribute) {
      return NoRule(s, "no torch parameter is read as input " + std::to_string(s.input) + " of " +
                           op + " (a constant of the exported graph)");
    }
    if (!module) return NoRule(s, "the node's name '" + node.name() + "' holds no module scope");
    // A generated Identity of a parameter is a shared copy, not a fold.
    if (op == "Conv" && s.input == 1 && !IsTorchName(s.source)) return MapFoldedWeight(s, *module);
    if (op == "Conv" && s.input == 2) {
      return m_.Unmap(
          {"folded_shift", s.reads, "", node_name,
           Mapper::Through(s, "the shift of the BatchNorm folded into Conv '" + node_name +
                                  "' (β − mean·γ/σ, with the conv's own bias if it "
                                  "had one): no torch tensor")});
    }
    if (op == "MatMul") return MapLinearWeight(s);
    Transform t = Whole(*s.tensor);
    if (op == "Gemm" && s.input == 1 && IntAttribute(node, "transB", 0) == 0) {
      if (s.tensor->dims_size() != 2) return NoRule(s, "Gemm's B is not 2-D");
      t = Transposed(*s.tensor, {1, 0}, " (Gemm's [K, N] back to Linear's [N, K])");
    }
    m_.Add({*module + "." + attribute, s.source, s.reads, node_name, attribute, t});
  }

  void NoRule(const Slot& s, const std::string& why) { m_.NoRule(s, why); }

  // torch.onnx's eval export folds a BatchNorm into the Conv before it and gives the new weight
  // and bias generated names: the weight is weight·γ/σ, the bias the BatchNorm's shift. Drawn
  // afresh, the weight is the conv's own (the BatchNorm's reset state, γ = σ = 1 up to eps,
  // is then what torch would have); kept, it is not.
  void MapFoldedWeight(const Slot& s, const std::string& module) {
    const std::string node = index_.NodeName(s.node);
    m_.Unmap({"folded_batchnorm", "", "the BatchNorm after '" + module + "'", node,
              "folded into Conv '" + node +
                  "' by torch.onnx's eval export: its weight, bias, running_mean, running_var "
                  "and num_batches_tracked are not in the model, nor its name"});
    if (!m_.Redrawn(s.reads) && !m_.Redrawn(s.source)) {
      m_.Unmap({"folded_weight", s.reads, module + ".weight", node,
                "holds " + module +
                    ".weight·γ/σ of the BatchNorm folded into it, kept as it "
                    "is: not torch's weight"});
      return;
    }
    Transform t = Whole(*s.tensor);
    t.text =
        "none (BatchNorm folded into this conv by the exporter; drawn afresh, the weight "
        "is the conv's own)";
    m_.Add({module + ".weight", s.source, s.reads, node, "weight", t});
  }

  // A Linear on a 3-D/4-D input is exported as MatMul of its transposed weight [K, N] and an
  // Add of its bias. The bias keeps its name more often than the weight (the weight was
  // transposed by constant folding): its name names the weight ("x.bias" -> "x.weight",
  // MultiheadAttention's "in_proj_bias" -> "in_proj_weight"); else the MatMul's scope does.
  std::optional<std::string> LinearWeightName(int matmul) {
    const auto& node = index_.node(matmul);
    const auto& users = index_.Consumers(node.output(0));
    if (users.size() == 1 && index_.node(users[0]).op_type() == "Add") {
      for (const auto& in : index_.node(users[0]).input()) {
        if (in != node.output(0) && IsTorchName(in) && EndsWith(in, "bias") &&
            !m_.Source(in).empty()) {
          return in.substr(0, in.size() - 4) + "weight";
        }
      }
    }
    const auto module = TorchModule(node.name());
    if (!module) return std::nullopt;
    return *module + ".weight";
  }

  void MapLinearWeight(const Slot& s) {
    if (s.input != 1 || s.tensor->dims_size() != 2) {
      return NoRule(s, "a MatMul constant other than a 2-D B is no Linear weight");
    }
    const auto name = LinearWeightName(s.node);
    if (!name) return NoRule(s, "the MatMul's name holds no module scope");
    m_.Add({*name, s.source, s.reads, index_.NodeName(s.node), "weight",
            Transposed(*s.tensor, {1, 0}, " (MatMul's [K, N] back to Linear's [N, K])")});
  }

  void MapLinearBias(const Slot& s) {
    const auto& node = index_.node(s.node);
    const std::string other = node.input_size() == 2 ? node.input(1 - s.input) : "";
    const int p = index_.Producer(other);
    const bool after_linear = p >= 0 && index_.node(p).op_type() == "MatMul" &&
                              index_.node(p).input_size() == 2 &&
                              !m_.Source(index_.node(p).input(1)).empty();
    if (!after_linear || s.tensor->dims_size() != 1) {
      return NoRule(s, "an Add of a constant that is not a Linear's bias after its MatMul");
    }
    const auto weight = LinearWeightName(p);
    if (!weight) return NoRule(s, "the MatMul's name holds no module scope");
    m_.Add({weight->substr(0, weight->size() - 6) + "bias", s.source, s.reads,
            index_.NodeName(s.node), "bias", Whole(*s.tensor)});
  }

  // W [D, G·H, I], R [D, G·H, H], B [D, 2·G·H] -> weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
  // bias_hh_l{k} (+ "_reverse" for direction 1), each [G·H, ...] in torch's gate order. The
  // k-th recurrent node of a module is its layer k (torch.onnx writes one node per layer).
  void MapRecurrent(const Slot& s) {
    const auto& node = index_.node(s.node);
    const RecurrentRule& rule = *FindRecurrent(node.op_type());
    const std::string node_name = index_.NodeName(s.node);
    const auto module = TorchModule(node.name());
    if (s.input < 1 || s.input > 3) {
      return NoRule(s, "input " + std::to_string(s.input) + " of " + node.op_type() +
                           " is no torch parameter (peepholes or initial state)");
    }
    if (!module) return NoRule(s, "the node's name '" + node.name() + "' holds no module scope");
    if (IntAttribute(node, "layout", 0) != 0) return NoRule(s, "layout 1 is not torch's export");
    const std::vector<int64_t> d = Dims(*s.tensor);
    const int64_t gates = rule.gates;
    const bool bias = s.input == 3;
    if (d.size() != (bias ? 2u : 3u) || d[1] % (gates * (bias ? 2 : 1)) != 0 || d[0] < 1 ||
        d[0] > 2) {
      return NoRule(s, "shape " + ShapeText(d) + " is not a recurrent weight's");
    }
    const int64_t hidden = d[1] / (gates * (bias ? 2 : 1));
    const int64_t row = bias ? 1 : d[2];  // elements per hidden unit of one gate
    const int layer = LayerOf(s.node, *module);
    for (int64_t dir = 0; dir < d[0]; ++dir) {
      const std::string suffix = "_l" + std::to_string(layer) + (dir == 1 ? "_reverse" : "");
      const int halves = bias ? 2 : 1;
      for (int half = 0; half < halves; ++half) {
        const char* kind =
            bias ? (half == 0 ? "bias_ih" : "bias_hh") : (s.input == 1 ? "weight_ih" : "weight_hh");
        Transform t;
        const int64_t base = dir * d[1] * row + half * gates * hidden;
        for (int g : rule.order) t.chunks.push_back({base + g * hidden * row, hidden * row});
        t.dims = bias ? std::vector<int64_t>{gates * hidden}
                      : std::vector<int64_t>{gates * hidden, d[2]};
        t.text = "direction " + std::to_string(dir) + " of " + std::to_string(d[0]);
        if (bias)
          t.text += std::string(", ") + (half == 0 ? "first" : "second") + " half (" + kind + ")";
        if (*rule.text) t.text += std::string(", ") + rule.text;
        m_.Add({*module + "." + kind + suffix, s.source, s.reads, node_name,
                bias ? "bias" : (s.input == 1 ? "weight" : "recurrence"), t});
      }
    }
  }

  // A module that reads another module's parameter as its own weight (an output head tied to
  // the token embedding: GPT-2's lm_head reads transformer.wte.weight, in a training export
  // through the Transpose of its MatMul) has that tensor in its state_dict under a second key,
  // which the exporter writes once. The second key is listed, not written again: transformers'
  // save_pretrained writes a tied tensor once too, and from_pretrained ties it back. A module's
  // own parameters, and those of modules inside it that it uses itself (MultiheadAttention's
  // in_proj_weight, out_proj.weight), are no second key.
  void ListTied() {
    for (int n = 0; n < index_.node_count(); ++n) {
      const auto& node = index_.node(n);
      const auto module = TorchModule(node.name());
      if (!module) continue;
      for (int i = 0; i < node.input_size(); ++i) {
        const char* attribute = TorchAttribute(node.op_type(), i);
        if (!attribute || node.input(i).empty()) continue;
        std::string key = node.input(i);
        const int p = index_.Producer(key);
        const bool transposed =
            p >= 0 && node.op_type() == "MatMul" && index_.node(p).op_type() == "Transpose";
        if (transposed) key = index_.node(p).input(0);
        const std::string name = *module + "." + attribute;
        if (!IsTorchName(key) || m_.Source(key).empty() || name == key ||
            !EndsWith(key, std::string(".") + attribute) || key.rfind(*module + ".", 0) == 0 ||
            m_.Has(name)) {
          continue;
        }
        std::string why = "'" + *module + "' reads '" + key + "'";
        if (transposed) why += " (transposed)";
        why += std::string(" as its ") + attribute + ": a tied weight, the same tensor under ";
        why += "a second state_dict key; written once, as '" + key + "' (as transformers' ";
        why += "save_pretrained does; from_pretrained ties it back, load_state_dict needs ";
        why += "strict=False)";
        m_.Unmap({"tied", key, name, index_.NodeName(n), why});
      }
    }
  }

  int LayerOf(int node, const std::string& module) {
    int layer = 0;
    for (int n = 0; n < node; ++n) {
      const auto& other = index_.node(n);
      if (FindRecurrent(other.op_type()) && TorchModule(other.name()) == module) ++layer;
    }
    return layer;
  }

  // torch's BatchNorm has a num_batches_tracked buffer (int64, 0 at construction) that no ONNX
  // export holds; state_dict has it wherever the running statistics are.
  void AddBatchCounters() {
    std::vector<NamedTensor> with;
    for (auto& t : m_.tensors()) {
      with.push_back(t);
      if (t.role != "running_var" || !EndsWith(t.name, ".running_var")) continue;
      const std::string module = t.name.substr(0, t.name.size() - 12);
      if (!m_.Has(module + ".running_mean") || m_.Has(module + ".num_batches_tracked")) continue;
      NamedTensor counter;
      counter.name = module + ".num_batches_tracked";
      counter.role = "num_batches_tracked";
      counter.transform = {{}, {}, {}, "synthesized: torch's BatchNorm counter, 0 as constructed"};
      counter.synthesized_type = onnx::TensorProto::INT64;
      with.push_back(counter);
    }
    m_.tensors() = std::move(with);
  }

  Mapper& m_;
  const GraphIndex& index_;
};

// --- keras: tf2onnx's node names -> Keras weight names and layouts --------------------------

// tf2onnx names a node after the TF op it converts, under the Keras layer's name scope:
// [StatefulPartitionedCall/]model/conv2d_3/Conv2D, model/dense/MatMul, model/dense/BiasAdd.
// The layer is the scope right before the op.
std::optional<std::string> KerasLayer(const std::string& name) {
  std::vector<std::string> parts = Split(name, '/');
  if (parts.size() < 2 || parts[parts.size() - 2].empty()) return std::nullopt;
  return parts[parts.size() - 2];
}

// ONNX layouts -> Keras layouts. Conv W [out, in/g, k...] -> kernel [k..., in/g, out];
// depthwise W [C·mult, 1, kh, kw] -> depthwise_kernel [kh, kw, C, mult];
// ConvTranspose W [in, out, k...] -> kernel [k..., out, in]; MatMul B [in, out] is Dense's.
struct KerasRole {
  const char* op;
  int input;
  const char* variable;
};
constexpr KerasRole kKerasRoles[] = {
    {"Conv", 1, "kernel"},
    {"Conv", 2, "bias"},
    {"ConvTranspose", 1, "kernel"},
    {"ConvTranspose", 2, "bias"},
    {"MatMul", 1, "kernel"},
    {"Gemm", 1, "kernel"},
    {"Gemm", 2, "bias"},
    {"BatchNormalization", 1, "gamma"},
    {"BatchNormalization", 2, "beta"},
    {"BatchNormalization", 3, "moving_mean"},
    {"BatchNormalization", 4, "moving_variance"},
    {"LayerNormalization", 1, "gamma"},
    {"LayerNormalization", 2, "beta"},
    {"Gather", 0, "embeddings"},
};

class KerasNames {
 public:
  explicit KerasNames(Mapper* m) : m_(*m), index_(m->index()) {}

  void Run(const onnx::ModelProto& model) {
    if (model.producer_name() != "tf2onnx") {
      m_.Warn("the model was produced by '" + model.producer_name() +
              "', not tf2onnx: --names keras reads tf2onnx's naming");
    }
    for (const Slot& s : m_.Slots()) Map(s);
  }

 private:
  void Map(const Slot& s) {
    const auto& node = index_.node(s.node);
    const std::string op = node.op_type();
    if (op == "Identity") return;
    const std::string node_name = index_.NodeName(s.node);
    const auto layer = KerasLayer(node.name());
    const char* variable = nullptr;
    for (const auto& r : kKerasRoles) {
      if (op == r.op && s.input == r.input) variable = r.variable;
    }
    if (op == "Add") return MapBias(s);
    if (!variable) {
      return NoRule(s, "no Keras weight is read as input " + std::to_string(s.input) + " of " + op);
    }
    if (!layer) return NoRule(s, "the node's name '" + node.name() + "' holds no layer scope");
    if (op == "Conv" && EndsWith(s.source, "_bias_fused_bn")) {
      return m_.Unmap({"folded_shift", s.reads, "", node_name,
                       "the shift of the BatchNorm tf2onnx fused into Conv '" + node_name +
                           "' (beta − moving_mean·gamma/σ, with the conv's bias if any): no "
                           "Keras weight"});
    }
    Transform t = Whole(*s.tensor);
    std::string var = variable;
    if (op == "Conv" || op == "ConvTranspose") {
      auto kernel = KernelLayout(s, &var);
      if (!kernel) return;
      t = *kernel;
      if (op == "Conv" && EndsWith(s.source, "_weights_fused_bn")) {
        if (!Folded(s, *layer)) return;
        t.text += " (BatchNorm fused in by tf2onnx; drawn afresh, the kernel is the conv's own)";
      }
    } else if (op == "Gemm" && s.input == 1 && IntAttribute(node, "transB", 0) == 1) {
      t = Transposed(*s.tensor, {1, 0}, " (Gemm's transposed B back to Dense's [in, out])");
    } else if ((op == "MatMul" || op == "Gemm") && s.tensor->dims_size() != 2) {
      return NoRule(s, "a " + op + " constant that is not 2-D is no Dense kernel");
    }
    m_.Add({*layer + "/" + var + ":0", s.source, s.reads, node_name, variable, t});
  }

  void NoRule(const Slot& s, const std::string& why) { m_.NoRule(s, why); }

  std::optional<Transform> KernelLayout(const Slot& s, std::string* var) {
    const auto& node = index_.node(s.node);
    const std::vector<int64_t> d = Dims(*s.tensor);
    const int64_t group = IntAttribute(node, "group", 1);
    const size_t rank = d.size();
    if (rank < 3 || rank > 5) {
      NoRule(s, "a " + std::to_string(rank) + "-D kernel has no Keras layer");
      return std::nullopt;
    }
    std::vector<int64_t> perm;
    for (size_t k = 2; k < rank; ++k) perm.push_back(k);
    // TF's DepthwiseConv2dNative, which tf2onnx names after it ("depthwise").
    const bool depthwise = node.op_type() == "Conv" && rank == 4 && d[1] == 1 && group > 1 &&
                           d[0] % group == 0 &&
                           (node.name().find("depthwise") != std::string::npos ||
                            s.source.find("depthwise") != std::string::npos);
    if (depthwise) {
      *var = "depthwise_kernel";
      Transform t{{}, {group, d[0] / group, d[2], d[3]}, {2, 3, 0, 1}, ""};
      t.text = "reshape " + ShapeText(t.dims) +
               ", transpose [2,3,0,1] (ONNX [C·mult, 1, kh, kw] "
               "to Keras [kh, kw, C, mult])";
      return t;
    }
    if (node.op_type() == "ConvTranspose" && group != 1) {
      NoRule(s, "a grouped ConvTranspose has no Keras layer");
      return std::nullopt;
    }
    perm.push_back(1);
    perm.push_back(0);
    const char* why = node.op_type() == "Conv" ? " (ONNX [out, in, k...] to Keras [k..., in, out])"
                                               : " (ONNX [in, out, k...] to Keras [k..., out, in])";
    return Transposed(*s.tensor, perm, why);
  }

  // tf2onnx fuses a BatchNorm into the conv before it ("..._weights_fused_bn"); the BatchNorm's
  // layer name is kept in the conv's output ("model/batch_normalization_3/FusedBatchNormV3:0").
  bool Folded(const Slot& s, const std::string& layer) {
    const auto& node = index_.node(s.node);
    const std::string node_name = index_.NodeName(s.node);
    const auto bn = KerasLayer(node.output(0));
    std::string names = "the BatchNorm after '" + layer + "'";
    if (bn && Split(node.output(0), '/').back().rfind("FusedBatchNorm", 0) == 0) {
      names = "";
      for (const char* v : {"gamma", "beta", "moving_mean", "moving_variance"}) {
        if (!names.empty()) names += ", ";
        names += *bn + "/" + v + ":0";
      }
    }
    m_.Unmap({"folded_batchnorm", "", names, node_name,
              "fused into Conv '" + node_name + "' by tf2onnx: not in the model"});
    if (m_.Redrawn(s.reads) || m_.Redrawn(s.source)) return true;
    m_.Unmap({"folded_weight", s.reads, layer + "/kernel:0", node_name,
              "holds the kernel·gamma/σ of the BatchNorm fused into it, kept as it is: not the "
              "Keras kernel"});
    return false;
  }

  // BiasAdd after a Dense's MatMul or a conv: "layer/bias:0".
  void MapBias(const Slot& s) {
    const auto& node = index_.node(s.node);
    const std::string other = node.input_size() == 2 ? node.input(1 - s.input) : "";
    const int p = index_.Producer(other);
    const std::string pop = p >= 0 ? index_.node(p).op_type() : "";
    const auto layer = KerasLayer(node.name());
    if ((pop != "MatMul" && pop != "Conv" && pop != "ConvTranspose") || !layer) {
      return NoRule(s, "an Add of a constant that is not a layer's bias after its MatMul or conv");
    }
    const int64_t n = s.tensor->dims_size() ? s.tensor->dims(s.tensor->dims_size() - 1) : 0;
    int64_t elements = 1;
    for (auto v : s.tensor->dims()) elements *= v;
    if (elements != n) return NoRule(s, "a bias of shape " + ShapeText(Dims(*s.tensor)));
    Transform t = {{}, {n}, {}, "reshape [" + std::to_string(n) + "]"};
    if (s.tensor->dims_size() == 1) t.text = "none";
    m_.Add({*layer + "/bias:0", s.source, s.reads, index_.NodeName(s.node), "bias", t});
  }

  Mapper& m_;
  const GraphIndex& index_;
};

}  // namespace

const char* NameStyleName(NameStyle style) {
  switch (style) {
    case NameStyle::kOnnx:
      return "onnx";
    case NameStyle::kTorch:
      return "torch";
    case NameStyle::kKeras:
      return "keras";
  }
  return "?";
}

StatusOr<NameStyle> ParseNameStyle(const std::string& name) {
  for (NameStyle s : {NameStyle::kOnnx, NameStyle::kTorch, NameStyle::kKeras}) {
    if (name == NameStyleName(s)) return s;
  }
  return UsageError("unknown --names '" + name + "'; expected onnx, torch or keras");
}

std::vector<int64_t> TransformedShape(const Transform& t) {
  if (t.perm.empty()) return t.dims;
  std::vector<int64_t> out;
  for (int64_t p : t.perm) out.push_back(t.dims[p]);
  return out;
}

NameMapping MapNames(const onnx::ModelProto& model, NameStyle style,
                     const std::function<bool(const std::string&)>& redrawn) {
  Mapper m(model, redrawn);
  switch (style) {
    case NameStyle::kOnnx:
      MapOnnx(model, &m);
      break;
    case NameStyle::kTorch:
      TorchNames(&m).Run(model);
      break;
    case NameStyle::kKeras:
      KerasNames(&m).Run(model);
      break;
  }
  return m.Finish(NameStyleName(style));
}

}  // namespace reinit
