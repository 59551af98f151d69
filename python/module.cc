// reinit._reinit: the library bound for Python, thinly. A model comes as a str (a path: the
// file-based entry points, with all their guarantees) or bytes (the in-memory ones; `name`
// stands for a path in messages); options come as a dict named like the tool's long flags
// (`_` for `-`) and become the same RunOptions the tool builds, through the same conversions
// (src/option_values.h). The package around it (python/reinit/__init__.py) turns ModelProto,
// plan dicts and numpy columns into and out of these forms.
//
// Errors: a usage error (a bad option or value; the tool's exit 2) raises ValueError, any other
// Status reinit.Error, with the message the tool prints after "reinit: error: ". The GIL is
// released while the library plans, draws, propagates and writes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "option_values.h"
#include "reinit.h"

namespace py = pybind11;

namespace {

// reinit.Error.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Throw(const reinit::Status& status) {
  if (status.code() == reinit::StatusCode::kUsage) throw py::value_error(status.message());
  throw Failure(status.message());
}

template <typename T>
T Take(reinit::StatusOr<T> result) {
  if (!result.ok()) Throw(result.status());
  return std::move(result).value();
}

// ---- option values, checked by Python type

[[noreturn]] void BadType(const std::string& name, const char* want, py::handle value) {
  throw py::value_error("option " + name + "= must be " + want + ", not " +
                        std::string(py::str(py::type::of(value).attr("__name__"))));
}

std::string Str(const std::string& name, py::handle v) {
  if (!py::isinstance<py::str>(v)) BadType(name, "a str", v);
  return v.cast<std::string>();
}

bool Flag(const std::string& name, py::handle v) {
  if (!py::isinstance<py::bool_>(v)) BadType(name, "True or False", v);
  return v.cast<bool>();
}

// An int in [lo, hi] (bool is no int here).
int64_t Int(const std::string& name, py::handle v, int64_t lo, int64_t hi) {
  if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v)) BadType(name, "an int", v);
  const auto big = v.cast<py::int_>();
  if (big < py::int_(lo) || big > py::int_(hi)) {
    throw py::value_error("option " + name + "=" + std::string(py::str(v)) + " is out of range [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return v.cast<int64_t>();
}

double Number(const std::string& name, py::handle v) {
  if (py::isinstance<py::bool_>(v) ||
      !(py::isinstance<py::int_>(v) || py::isinstance<py::float_>(v))) {
    BadType(name, "a number", v);
  }
  return v.cast<double>();
}

double Positive(const std::string& name, py::handle v) {
  const double x = Number(name, v);
  if (!(x > 0)) throw py::value_error("option " + name + "= must be positive");
  return x;
}

// A dict {KEY: VALUE} or a list of "KEY=VALUE" strings (the tool's repeated flag).
template <typename Pair, typename FromDict>
std::vector<Pair> Pairs(const std::string& name, py::handle v, FromDict from_dict,
                        reinit::StatusOr<Pair> (*parse)(const std::string&)) {
  std::vector<Pair> out;
  if (py::isinstance<py::dict>(v)) {
    for (auto [key, value] : v.cast<py::dict>()) out.push_back(from_dict(Str(name, key), value));
  } else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    for (py::handle item : v) out.push_back(Take(parse(Str(name, item))));
  } else {
    BadType(name, "a dict or a list of str", v);
  }
  return out;
}

// ---- the option table: every keyword, what it sets, and the calls that take it

enum Group : unsigned {
  kPlan = 1,    // shapes the plan (refused beside plan=, as the tool refuses it beside --plan)
  kLimit = 2,   // max_memory
  kInputs = 4,  // the random inputs: propagate, LSUV
  kDraw = 8,    // how the weights are drawn and checked
  kFile = 16,   // how a file is written
};

using Setter = void (*)(const std::string& name, py::handle value, reinit::RunOptions* o);
struct OptionRow {
  Group group;
  Setter set;
};

reinit::LayerOverride LayerFromDict(const std::string& glob, py::handle scheme) {
  return {glob, Str("layers", scheme)};
}

std::pair<std::string, std::vector<int64_t>> InputFromDict(const std::string& input,
                                                           py::handle dims) {
  if (!py::isinstance<py::list>(dims) && !py::isinstance<py::tuple>(dims)) {
    BadType("inputs", "a dict of lists of dims", dims);
  }
  std::vector<int64_t> out;
  for (py::handle d : dims) out.push_back(Int("inputs", d, 1, INT64_MAX));
  return {input, out};
}

reinit::StatusOr<std::pair<std::string, std::string>> DataFromString(const std::string& spec) {
  return reinit::ParseDataSpec(spec);
}

std::pair<std::string, std::string> DataFromDict(const std::string& input, py::handle file) {
  return {input, Str("data", file)};
}

// data="x.npy" (the only input), ["NAME=x.npy", ...] or {"NAME": "x.npy"}.
void SetData(const std::string& name, py::handle v, reinit::RunOptions* o) {
  const py::object list =
      py::isinstance<py::str>(v) ? py::make_tuple(v) : py::reinterpret_borrow<py::object>(v);
  for (auto& [input, file] : Pairs(name, list, DataFromDict, DataFromString)) o->data[input] = file;
}

// A planning option's value, checked by the Python type its row takes (src/plan_options.h).
reinit::OptionValue PlanValue(const std::string& n, py::handle v, reinit::OptionType type) {
  using T = reinit::OptionType;
  switch (type) {
    case T::kText:
      return Str(n, v);
    case T::kNumber:
      return Number(n, v);
    case T::kPositiveNumber:
      return Positive(n, v);
    case T::kFlag:
      return Flag(n, v);
    case T::kSeed:
      // A Python int past int64: cast through unsigned.
      if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v)) BadType(n, "an int", v);
      if (v.cast<py::int_>() < py::int_(0) || v.cast<py::int_>() > py::int_(UINT64_MAX)) {
        throw py::value_error("seed must be a whole number from 0 to 18446744073709551615");
      }
      return v.cast<uint64_t>();
    case T::kGlobSchemes:
      return Pairs(n, v, LayerFromDict, reinit::ParseLayerOverride);
  }
  throw py::value_error("option " + n + "= has no conversion");
}

// Every planning option of the table, by its keyword.
void SetPlan(const std::string& n, py::handle v, reinit::RunOptions* o) {
  for (const auto& row : reinit::PlanOptionRows()) {
    if (row.keyword != n) continue;
    if (reinit::Status s = row.set(PlanValue(n, v, row.type), &o->plan); !s.ok()) Throw(s);
  }
}

const std::map<std::string, OptionRow>& Options() {
  using O = reinit::RunOptions;
  static const std::map<std::string, OptionRow> kOptions = [] {
    std::map<std::string, OptionRow> rows = {
        {"max_memory",
         {kLimit, [](auto& n, py::handle v,
                     O* o) { o->max_memory = o->plan.max_memory = Int(n, v, 1, INT64_MAX); }}},
        {"batch",
         {kInputs,
          [](auto& n, py::handle v, O* o) { o->inputs.batch = Int(n, v, 1, reinit::kMaxBatch); }}},
        {"inputs",
         {kInputs,
          [](auto& n, py::handle v, O* o) {
            for (auto& [input, dims] : Pairs(n, v, InputFromDict, reinit::ParseInputShape)) {
              o->inputs.input_shapes[input] = dims;
            }
          }}},
        {"threads",
         {kDraw,
          [](auto& n, py::handle v, O* o) { o->threads = Int(n, v, 0, reinit::kMaxThreads); }}},
        {"skip_check", {kDraw, [](auto& n, py::handle v, O* o) { o->skip_check = Flag(n, v); }}},
        {"lsuv_tolerance",
         {kDraw, [](auto& n, py::handle v, O* o) { o->lsuv.tolerance = Positive(n, v); }}},
        {"lsuv_iterations",
         {kDraw, [](auto& n, py::handle v,
                    O* o) { o->lsuv.max_iterations = Int(n, v, 1, reinit::kMaxLsuvIterations); }}},
        {"data", {kDraw, SetData}},
        {"external_data",
         {kFile, [](auto& n, py::handle v,
                    O* o) { o->save.mode = Take(reinit::ParseExternalDataMode(Str(n, v))); }}},
        {"in_place", {kFile, [](auto& n, py::handle v, O* o) { o->in_place = Flag(n, v); }}},
        {"fsync", {kFile, [](auto& n, py::handle v, O* o) { o->save.fsync = Flag(n, v); }}},
    };
    for (const auto& row : reinit::PlanOptionRows())
      rows[std::string(row.keyword)] = {kPlan, SetPlan};
    return rows;
  }();
  return kOptions;
}

// The RunOptions of one call: `options` (keyword -> value) applied over the tool's defaults.
// A keyword outside `groups` is refused, naming the ones this call takes.
reinit::RunOptions ToRunOptions(const py::dict& options, unsigned groups, const char* call) {
  reinit::RunOptions run;
  bool batch_given = false;
  for (auto [key, value] : options) {
    const std::string name = Str("name", key);
    auto row = Options().find(name);
    if (row == Options().end() || !(row->second.group & groups)) {
      std::string valid;
      for (const auto& [n, r] : Options()) {
        if (r.group & groups) valid += (valid.empty() ? "" : ", ") + n;
      }
      throw py::value_error("unknown option '" + name + "' for reinit." + call +
                            "(); valid: " + valid);
    }
    if (value.is_none()) continue;  // the default
    row->second.set(name, value, &run);
    batch_given |= name == "batch";
  }
  run.inputs.seed = run.plan.seed;  // the same seed draws the random inputs
  if (!batch_given) run.inputs.batch = reinit::DefaultBatch(run.plan.scheme);
  return run;
}

// Beside plan=, as beside the tool's --plan: the plan sets these.
void RefusePlanOptions(const py::dict& options) {
  for (auto [key, value] : options) {
    const std::string name = py::str(key);
    auto row = Options().find(name);
    if (row != Options().end() && row->second.group == kPlan && !value.is_none()) {
      throw py::value_error("plan= cannot be combined with " + name +
                            "=: the plan sets it (edit the plan instead)");
    }
  }
}

// A model argument: a path (str) or its serialized bytes.
struct Model {
  std::optional<std::string> path;
  reinit::ModelBytes bytes;
};

Model ToModel(const py::object& model, const std::string& name) {
  Model m;
  if (py::isinstance<py::str>(model)) {
    m.path = model.cast<std::string>();
  } else if (py::isinstance<py::bytes>(model)) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    // A view of the caller's bytes object, immutable and alive for the whole call.
    if (PyBytes_AsStringAndSize(model.ptr(), &data, &size) != 0) throw py::error_already_set();
    m.bytes = {std::string_view(data, static_cast<size_t>(size)), name};
  } else {
    BadType("model", "a path or bytes", model);
  }
  return m;
}

// ---- the calls

std::string Plan(const py::object& model, const std::string& name, const py::dict& options) {
  const reinit::RunOptions run = ToRunOptions(options, kPlan | kLimit, "plan");
  const Model m = ToModel(model, name);
  reinit::StatusOr<reinit::proto::Plan> plan = reinit::proto::Plan();
  {
    py::gil_scoped_release release;
    plan =
        m.path ? reinit::InspectFile(*m.path, run.plan) : reinit::InspectBytes(m.bytes, run.plan);
  }
  return reinit::PlanToJson(Take(std::move(plan)));
}

// (the new model's bytes, or the path written; the plan applied, as JSON; the warnings).
py::tuple Reinit(const py::object& model, const std::string& name, const py::dict& options,
                 const std::optional<std::string>& plan_json,
                 const std::optional<std::string>& output) {
  const Model m = ToModel(model, name);
  if (plan_json) RefusePlanOptions(options);
  if (!m.path && output) throw py::value_error("output= is for a model given as a path");
  const unsigned groups = kPlan | kLimit | kInputs | kDraw | (m.path ? unsigned{kFile} : 0u);
  reinit::RunOptions run = ToRunOptions(options, groups, "reinit");
  run.plan_json = plan_json;
  std::string bytes;
  reinit::StatusOr<reinit::RunResult> result = reinit::RunResult();
  {
    py::gil_scoped_release release;
    if (m.path) {
      run.input = *m.path;
      run.output = output.value_or("");
      result = reinit::ReinitFile(run);
    } else {
      result = reinit::ReinitBytes(m.bytes, run, &bytes);
    }
  }
  reinit::RunResult r = Take(std::move(result));
  py::object out = m.path ? py::object(py::str(r.output)) : py::object(py::bytes(bytes));
  return py::make_tuple(out, reinit::PlanToJson(r.plan), r.warnings);
}

py::dict LayerColumns(const reinit::Signal& signal) {
  py::list name, op, activation, mean_before, std_before, mean_after, std_after;
  for (const auto& l : signal.layers) {
    name.append(l.name);
    op.append(l.op);
    activation.append(l.activation);
    mean_before.append(l.before.mean);
    std_before.append(l.before.std);
    mean_after.append(l.after.mean);
    std_after.append(l.after.std);
  }
  py::dict d;
  d["layer"] = name;
  d["op"] = op;
  d["activation"] = activation;
  d["mean_before"] = mean_before;
  d["std_before"] = std_before;
  d["mean_after"] = mean_after;
  d["std_after"] = std_after;
  return d;
}

py::dict JoinColumns(const reinit::Signal& signal) {
  py::list stream, branch, node, mean, std, after;
  for (const auto& j : signal.joins) {
    stream.append(j.stream);
    branch.append(j.branch);
    node.append(j.node);
    mean.append(j.moments.mean);
    std.append(j.moments.std);
    after.append(j.after);
  }
  py::dict d;
  d["stream"] = stream;
  d["branch"] = branch;
  d["join"] = node;
  d["mean"] = mean;
  d["std"] = std;
  d["after_layers"] = after;
  return d;
}

// (per-layer columns, per-join columns, the plan's JSON): the model as it is when
// `reinit_first` is false, else re-initialized in memory by the options first.
py::tuple Propagate(const py::object& model, const std::string& name, const py::dict& options,
                    bool reinit_first) {
  const unsigned groups = kPlan | kLimit | kInputs | (reinit_first ? unsigned{kDraw} : 0u);
  reinit::RunOptions run = ToRunOptions(options, groups, "propagate");
  const Model m = ToModel(model, name);
  reinit::StatusOr<reinit::Propagation> result = reinit::Propagation();
  {
    py::gil_scoped_release release;
    if (reinit_first) {
      if (m.path) run.input = *m.path;
      result = reinit::PropagateReinitialized(run, m.path ? nullptr : &m.bytes);
    } else {
      result = m.path ? reinit::PropagateFile(*m.path, run.plan, run.inputs)
                      : reinit::PropagateBytes(m.bytes, run.plan, run.inputs);
    }
  }
  reinit::Propagation p = Take(std::move(result));
  return py::make_tuple(LayerColumns(p.signal), JoinColumns(p.signal), reinit::PlanToJson(p.plan));
}

// (tensors as (name, ONNX data type, shape, bytes) tuples, the sidecar JSON, the plan's JSON,
// the warnings, the files written or None): ExportFile's stages, the tensors kept in memory.
py::tuple Export(const py::object& model, const std::string& name, const py::dict& options,
                 const std::string& names, bool as_is, const std::optional<std::string>& plan_json,
                 const std::optional<std::string>& output, const std::string& format) {
  const Model m = ToModel(model, name);
  if (plan_json) RefusePlanOptions(options);
  const reinit::RunOptions run = ToRunOptions(options, kPlan | kLimit, "export");
  reinit::ExportFileOptions e;
  e.names = Take(reinit::ParseNameStyle(names));
  e.as_is = as_is;
  e.plan_json = plan_json;
  e.plan = run.plan;
  e.max_memory = run.max_memory;
  e.output = output.value_or("");
  e.format = format;
  reinit::StatusOr<reinit::ExportRun> result = reinit::ExportRun();
  {
    py::gil_scoped_release release;
    if (m.path) e.input = *m.path;
    result = m.path ? reinit::ExportPath(e) : reinit::ExportBytes(m.bytes, e);
  }
  reinit::ExportRun r = Take(std::move(result));
  py::list tensors;
  for (const auto& t : r.exported.tensors) {
    tensors.append(py::make_tuple(t.name, t.data_type, t.shape, py::bytes(t.bytes)));
  }
  py::object written = py::none();
  if (output) written = py::make_tuple(r.summary.output, r.summary.sidecar);
  return py::make_tuple(tensors, r.exported.sidecar, reinit::PlanToJson(r.summary.plan),
                        r.summary.warnings, written);
}

py::list Schemes() {
  py::list out;
  for (const reinit::Scheme& s : reinit::Schemes()) {
    py::dict d;
    d["name"] = std::string(s.name);
    d["formula"] = std::string(s.formula);
    d["kind"] = std::string(reinit::SchemeKindName(s.kind));
    d["distribution"] = std::string(reinit::DistributionName(s.distribution));
    d["mode"] = s.follows_mode ? std::string("fan_in|fan_out (mode=)")
                               : std::string(reinit::FanModeName(s.mode));
    d["uses_gain"] = s.uses_gain;
    out.append(d);
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_reinit, m) {
  m.doc() = "reinit's library, bound thinly; use the package `reinit` around it.";
  py::register_exception<Failure>(m, "Error", PyExc_Exception);
  m.def("plan", &Plan, py::arg("model"), py::arg("name"), py::arg("options"));
  m.def("reinit", &Reinit, py::arg("model"), py::arg("name"), py::arg("options"),
        py::arg("plan_json"), py::arg("output"));
  m.def("propagate", &Propagate, py::arg("model"), py::arg("name"), py::arg("options"),
        py::arg("reinit_first"));
  m.def("export", &Export, py::arg("model"), py::arg("name"), py::arg("options"), py::arg("names"),
        py::arg("as_is"), py::arg("plan_json"), py::arg("output"), py::arg("format"));
  m.def("schemes", &Schemes);
  m.attr("version") = REINIT_VERSION;
}
