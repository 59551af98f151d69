#include "init/apply.h"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "graph/graph_index.h"
#include "init/orthogonal.h"
#include "init/rng.h"
#include "io/codes.h"
#include "io/quantize.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"
#include "parallel.h"
#include "plan/drawable.h"
#include "plan/registry.h"

namespace reinit {

namespace {

// What to draw into one span: a whole tensor or one block of it.
struct DrawSpec {
  std::string scheme;
  double gain = 1, std = 0, bound = 0, value = 0;
  std::vector<int64_t> shape;  // for orthogonal: the span's shape and its output axis
  int output_axis = 0;
};

// Elements per piece of a parallel fill. Fixed, so that the pieces, and with them the bytes,
// never depend on the number of threads (each value depends only on its index anyway).
constexpr uint64_t kPieceElements = 1 << 16;

bool IsElementwise(Distribution d) { return d != Distribution::kOrthogonal; }

// Elements [first, first + out.size()) of a tensor drawn element by element.
template <typename T>
void FillPiece(Distribution distribution, const DrawSpec& spec, StreamKey key, uint64_t first,
               std::span<T> out) {
  switch (distribution) {
    case Distribution::kNone:
      std::fill(out.begin(), out.end(), T(0));
      return;
    case Distribution::kConstant:
      std::fill(out.begin(), out.end(), static_cast<T>(spec.value));
      return;
    case Distribution::kNormal:
      FillNormal<T>(key, spec.std, first, out);
      return;
    case Distribution::kUniform:
      FillUniform<T>(key, -spec.bound, spec.bound, first, out);
      return;
    case Distribution::kTruncatedNormal:
      FillTruncatedNormal<T>(key, spec.std, 2.0, first, out);
      return;
    case Distribution::kOrthogonal:
      return;
  }
}

// The same, in pieces of kPieceElements on the worker threads.
template <typename T>
void FillParallel(Distribution distribution, const DrawSpec& spec, StreamKey key, uint64_t first,
                  std::span<T> out) {
  const size_t pieces = (out.size() + kPieceElements - 1) / kPieceElements;
  ParallelFor(pieces, [&](size_t p) {
    const size_t begin = p * kPieceElements;
    const size_t n = std::min<size_t>(kPieceElements, out.size() - begin);
    FillPiece(distribution, spec, key, first + begin, out.subspan(begin, n));
  });
}

template <typename T>
Status Draw(const DrawSpec& spec, StreamKey key, std::span<T> values) {
  auto scheme = FindScheme(spec.scheme);
  if (!scheme.ok()) return scheme.status();
  if (IsElementwise((*scheme)->distribution)) {
    FillParallel((*scheme)->distribution, spec, key, 0, values);
    return Status::Ok();
  }
  const int axis = spec.output_axis;
  if (spec.shape.empty() || axis < 0 || axis >= static_cast<int>(spec.shape.size()) ||
      spec.shape[axis] <= 0) {
    return ModelError("orthogonal needs a weight of rank >= 1 and a valid output axis");
  }
  const int64_t rows = spec.shape[axis];
  const int64_t cols = static_cast<int64_t>(values.size()) / rows;
  std::vector<T> matrix(values.size());
  FillOrthogonal(key, rows, cols, spec.gain, std::span<T>(matrix));
  ScatterRows(matrix, spec.shape, axis, values);
  return Status::Ok();
}

// Draws a tensor as planned, into `values` in the tensor's own layout. A tensor the layer sees
// through a view is drawn in the view's layout (its blocks and orthogonal rows refer to it) and
// stored back through the view; elements outside the view or outside every block keep their
// values.
template <typename T>
Status DrawTensor(const proto::TensorInit& init, uint64_t seed, int64_t count,
                  const onnx::TensorProto& tensor, std::vector<T>* values) {
  const bool viewed = init.view_size() > 0;
  const std::vector<int64_t> shape =
      viewed ? std::vector<int64_t>(init.view_shape().begin(), init.view_shape().end())
             : std::vector<int64_t>(init.shape().begin(), init.shape().end());
  std::vector<int64_t> to_source;
  if (viewed) {
    std::vector<ViewStep> steps;
    for (const auto& v : init.view()) {
      ViewStep step;
      step.perm.assign(v.perm().begin(), v.perm().end());
      step.shape.assign(v.shape().begin(), v.shape().end());
      step.axis = v.indices_size() > 0 ? v.axis() : -1;
      step.indices.assign(v.indices().begin(), v.indices().end());
      steps.push_back(std::move(step));
    }
    to_source = ViewToSource(std::vector<int64_t>(init.shape().begin(), init.shape().end()), steps);
    for (int64_t k : to_source) {
      if (k < 0 || k >= count) return ModelError("view does not match the tensor");
    }
  }
  const int64_t n = viewed ? static_cast<int64_t>(to_source.size()) : count;
  const bool partial = !init.blocks().empty() || n < count;
  std::vector<T> source_values;  // the old values, where some of them stay
  if (partial) {
    auto old = ReadValues(tensor);
    if (!old.ok()) return old.status();
    source_values.assign(old->begin(), old->end());
  }
  std::vector<T> drawn(static_cast<size_t>(n));
  if (!init.blocks().empty()) {
    for (int64_t k = 0; k < n; ++k) {
      drawn[k] = source_values[viewed ? to_source[k] : k];
    }
  }
  if (init.blocks().empty()) {
    // An orthogonal draw takes the residual rule's depth factor as part of its gain; the other
    // draws have it in std and bound already.
    const double gain = init.gain() * (init.scale() > 0 ? init.scale() : 1);
    DrawSpec spec{init.scheme(), gain,  init.std(),        init.bound(),
                  init.value(),  shape, init.output_axis()};
    REINIT_RETURN_IF_ERROR(Draw<T>(spec, KeyFor(seed, init.name()), drawn));
  }
  for (const auto& b : init.blocks()) {
    const int64_t size = b.rows() * b.cols();
    if (b.offset() < 0 || b.rows() <= 0 || b.cols() <= 0 || b.offset() + size > n) {
      return ModelError("block '" + b.name() + "' does not fit in the tensor");
    }
    if (b.scheme() == "keep") continue;
    DrawSpec spec{b.scheme(), b.gain(), b.std(), b.bound(), b.value(), {b.rows(), b.cols()}, 0};
    std::span<T> part(drawn.data() + b.offset(), static_cast<size_t>(size));
    REINIT_RETURN_IF_ERROR(Draw<T>(spec, KeyFor(seed, init.name() + "/" + b.name()), part)
                               .WithContext("block '" + b.name() + "'"));
  }
  if (!viewed) {
    *values = std::move(drawn);
    return Status::Ok();
  }
  *values = partial ? std::move(source_values) : std::vector<T>(static_cast<size_t>(count));
  for (int64_t k = 0; k < n; ++k) (*values)[to_source[k]] = drawn[k];
  return Status::Ok();
}

Status RewriteInMemory(const proto::TensorInit& init, uint64_t seed, onnx::TensorProto* tensor) {
  auto count = ElementCount(*tensor);
  if (!count.ok()) return count.status();
  if (tensor->data_type() == onnx::TensorProto::DOUBLE) {
    std::vector<double> values;
    REINIT_RETURN_IF_ERROR(DrawTensor(init, seed, *count, *tensor, &values));
    return WriteValues(std::span<const double>(values), tensor);
  }
  std::vector<float> values;
  REINIT_RETURN_IF_ERROR(DrawTensor(init, seed, *count, *tensor, &values));
  return WriteValues(std::span<const float>(values), tensor);
}

// One batch of a streamed tensor's new values and bytes.
struct StreamBatch {
  std::vector<float> floats;    // FLOAT values, or the values before encoding
  std::vector<double> doubles;  // DOUBLE values
  std::vector<char> encoded;    // the other types' raw_data bytes (EncodeRaw)
  const char* data = nullptr;
  size_t size = 0;
};

// A streamed tensor's batches grow from one piece to kBatchElements; kBatchesAhead of them take
// turns.
constexpr uint64_t kBatchElements = 64 * kPieceElements;
constexpr size_t kBatchesAhead = 3;

// A tensor drawn element by element as it is written: `count` values of the ONNX type `type`.
struct ElementwiseDraw {
  Distribution distribution;
  DrawSpec spec;
  StreamKey key;
  uint64_t count;
  int32_t type;

  bool IsDouble() const { return type == onnx::TensorProto::DOUBLE; }
  // Encoded from the float values: FLOAT16, BFLOAT16, the FLOAT8 types, FLOAT4E2M1.
  bool IsEncoded() const { return !IsDouble() && type != onnx::TensorProto::FLOAT; }
};

// The kBatchesAhead batches, large enough for `draw`. Kept from one tensor to the next
// (producers run one at a time, on the saving thread): fresh buffers per tensor would cost a
// page fault per 4 KiB, every time.
StreamBatch* SizedStreamBatches(const ElementwiseDraw& draw) {
  static thread_local StreamBatch batches[kBatchesAhead];
  const size_t batch = static_cast<size_t>(std::min<uint64_t>(draw.count, kBatchElements));
  const bool is_double = draw.IsDouble(), is_encoded = draw.IsEncoded();
  const size_t bytes = static_cast<size_t>(RawBytes(draw.type, batch));
  for (StreamBatch& b : batches) {
    if (b.floats.size() < batch && !is_double) b.floats.resize(batch);
    if (b.doubles.size() < batch && is_double) b.doubles.resize(batch);
    if (b.encoded.size() < bytes && is_encoded) b.encoded.resize(bytes);
  }
  return batches;
}

// Draws elements [start, start + size) of the tensor (fewer at its end) into `b`, in pieces on
// the worker threads, and encodes them; b->data and b->size are then the batch's bytes.
void FillStreamBatch(const ElementwiseDraw& draw, uint64_t start, uint64_t size, StreamBatch* b) {
  const bool is_double = draw.IsDouble(), is_encoded = draw.IsEncoded();
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, draw.count - start));
  const size_t pieces = (n + kPieceElements - 1) / kPieceElements;
  ParallelFor(pieces, [&](size_t p) {
    const size_t begin = p * kPieceElements;
    const size_t len = std::min<size_t>(kPieceElements, n - begin);
    if (is_double) {
      FillPiece(draw.distribution, draw.spec, draw.key, start + begin,
                std::span<double>(b->doubles.data() + begin, len));
      return;
    }
    std::span<float> part(b->floats.data() + begin, len);
    FillPiece(draw.distribution, draw.spec, draw.key, start + begin, part);
    // Pieces start at multiples of kPieceElements (even): a FLOAT4E2M1 piece fills whole bytes.
    if (is_encoded) EncodeRaw(part, draw.type, b->encoded.data() + RawBytes(draw.type, begin));
  });
  b->data = is_double    ? reinterpret_cast<const char*>(b->doubles.data())
            : is_encoded ? b->encoded.data()
                         : reinterpret_cast<const char*>(b->floats.data());
  b->size = is_double ? n * 8 : static_cast<size_t>(RawBytes(draw.type, n));
}

// Hands the drawn batches from the drawing thread to one writer thread, in order, with at most
// kBatchesAhead of them drawn or being written at a time. After a failed write the writer drops
// the rest and drawing stops.
class StreamBatchQueue {
 public:
  // Waits until a batch is free and takes it; false once a write has failed.
  bool Reserve() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return busy_ < kBatchesAhead || !written_.ok(); });
    if (!written_.ok()) return false;
    ++busy_;
    return true;
  }

  // Queues a drawn batch for the writer.
  void Push(StreamBatch* b) {
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.push_back(b);
    changed_.notify_all();
  }

  // No more batches: the writer returns once the queued ones are written.
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    changed_.notify_all();
  }

  // The writer thread: writes the queued batches to `sink`, in order, until Close.
  void WriteAll(const ByteSink& sink) {
    for (;;) {
      StreamBatch* b = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return !ready_.empty() || done_; });
        if (ready_.empty()) return;
        b = ready_.front();
      }
      Status s = written_.ok() ? sink(b->data, b->size) : Status::Ok();
      std::lock_guard<std::mutex> lock(mutex_);
      if (!s.ok()) written_ = s;
      ready_.pop_front();
      --busy_;
      changed_.notify_all();
    }
  }

  // The first failed write, or Ok; once the writer has returned.
  const Status& written() const { return written_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<StreamBatch*> ready_;  // drawn, not yet written
  size_t busy_ = 0;                 // batches drawn or being written
  bool done_ = false;
  Status written_;
};

// The batches are drawn here, on the worker threads, and written in order by one writer thread,
// up to kBatchesAhead batches behind: drawing never waits for the writer while a batch is free,
// and the cores stay busy while the kernel copies into the page cache. Batches grow from one
// piece to kBatchElements, so that writing starts early in every tensor.
Status StreamInBatches(const ElementwiseDraw& draw, StreamBatch* batches, const ByteSink& sink) {
  StreamBatchQueue queue;
  std::thread writer([&] { queue.WriteAll(sink); });
  uint64_t size = kPieceElements;
  size_t k = 0;
  for (uint64_t start = 0; start < draw.count;
       start += size, size = std::min(2 * size, kBatchElements)) {
    if (!queue.Reserve()) break;
    StreamBatch* b = &batches[k++ % kBatchesAhead];
    FillStreamBatch(draw, start, size, b);
    queue.Push(b);
  }
  queue.Close();
  writer.join();
  return queue.written();
}

// The new bytes of a tensor drawn element by element, made as they are written: batches of
// pieces drawn and encoded on the worker threads, handed to the sink in order. Three batches
// take turns, so that the next ones are drawn while the sink writes the last. Memory: three
// batches, whatever the tensor's size. The same bytes as RewriteInMemory, piece for piece.
Producer ElementwiseProducer(Distribution distribution, DrawSpec spec, StreamKey key,
                             uint64_t count, int32_t type) {
  ElementwiseDraw draw{distribution, std::move(spec), key, count, type};
  return [draw = std::move(draw)](const ByteSink& sink) -> Status {
    StreamBatch* batches = SizedStreamBatches(draw);
    if (draw.count <= kPieceElements) {
      FillStreamBatch(draw, 0, draw.count, &batches[0]);
      return sink(batches[0].data, batches[0].size);
    }
    return StreamInBatches(draw, batches, sink);
  };
}

// The new bytes of a deferred tensor that must be drawn whole (orthogonal): drawn when they are
// written, one tensor at a time.
Producer WholeProducer(const proto::TensorInit& init, uint64_t seed, const onnx::TensorProto& t) {
  onnx::TensorProto shape;
  shape.set_name(t.name());
  shape.set_data_type(t.data_type());
  *shape.mutable_dims() = t.dims();
  return [init, seed, shape](const ByteSink& sink) -> Status {
    onnx::TensorProto drawn = shape;
    REINIT_RETURN_IF_ERROR(RewriteInMemory(init, seed, &drawn));
    const std::string& bytes = drawn.raw_data();
    for (size_t done = 0; done < bytes.size(); done += TensorStore::kPieceBytes) {
      REINIT_RETURN_IF_ERROR(
          sink(bytes.data() + done, std::min(TensorStore::kPieceBytes, bytes.size() - done)));
    }
    return Status::Ok();
  };
}

// A deferred tensor drawn whole, without its old values, gets a producer; one that keeps
// some of its old values (blocks kept, a view that covers part of it) is read into memory.
Status Rewrite(const proto::TensorInit& init, uint64_t seed, onnx::TensorProto* tensor,
               TensorStore* store, uint64_t max_memory) {
  if (store && IsDeferred(*tensor) && IsSupportedFloatType(tensor->data_type()) &&
      init.blocks().empty() && init.view().empty()) {
    auto scheme = FindScheme(init.scheme());
    if (!scheme.ok()) return scheme.status();
    auto count = ElementCount(*tensor);
    if (!count.ok()) return count.status();
    const Distribution d = (*scheme)->distribution;
    if (IsElementwise(d)) {
      DrawSpec spec{init.scheme(), init.gain(), init.std(), init.bound(), init.value(), {}, 0};
      store->SetProducer(*tensor,
                         ElementwiseProducer(d, spec, KeyFor(seed, init.name()),
                                             static_cast<uint64_t>(*count), tensor->data_type()));
    } else {
      REINIT_RETURN_IF_ERROR(CheckMemory(*tensor, max_memory));
      store->SetProducer(*tensor, WholeProducer(init, seed, *tensor));
    }
    return Status::Ok();
  }
  REINIT_RETURN_IF_ERROR(CheckMemory(*tensor, max_memory));
  if (store) REINIT_RETURN_IF_ERROR(store->Resolve(tensor));
  return RewriteInMemory(init, seed, tensor);
}

// A quantized weight: drawn in float as planned, then stored in its own type with new scales.
Status Requantize(const proto::TensorInit& init, uint64_t seed, onnx::TensorProto* q,
                  onnx::TensorProto* scale, const onnx::TensorProto* zero_point) {
  int64_t count = 1;
  for (int64_t d : q->dims()) count *= d;
  std::vector<float> values;
  REINIT_RETURN_IF_ERROR(DrawTensor(init, seed, count, *q, &values));
  std::vector<int32_t> zps;
  if (zero_point) {
    auto read = ReadZeroPoints(*zero_point);
    if (!read.ok()) return read.status();
    zps = std::move(read).value();
  }
  const QuantLayout layout{.axis = init.quant_axis(), .block_size = init.quant_block_size()};
  auto r = reinit::Requantize(values, {q->dims().begin(), q->dims().end()}, layout, zps,
                              q->data_type(), scale->data_type());
  if (!r.ok()) return r.status();
  REINIT_RETURN_IF_ERROR(WriteCodes(r->codes, q));
  return WriteValues(std::span<const double>(r->scales), scale);
}

void SetMetadata(onnx::ModelProto* model, const std::string& key, const std::string& value) {
  for (auto& p : *model->mutable_metadata_props()) {
    if (p.key() == key) {
      p.set_value(value);
      return;
    }
  }
  auto* p = model->add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

// Stored constants by name: initializers and Constant-node values, in the graph and in every
// subgraph its nodes hold.
void IndexNodes(google::protobuf::RepeatedPtrField<onnx::NodeProto>* nodes,
                std::unordered_map<std::string, onnx::TensorProto*>* tensors);

void IndexTensors(onnx::GraphProto* graph,
                  std::unordered_map<std::string, onnx::TensorProto*>* tensors) {
  for (auto& t : *graph->mutable_initializer()) tensors->emplace(t.name(), &t);
  IndexNodes(graph->mutable_node(), tensors);
}

// Constant-node values among `nodes`, and everything in the subgraphs they hold.
void IndexNodes(google::protobuf::RepeatedPtrField<onnx::NodeProto>* nodes,
                std::unordered_map<std::string, onnx::TensorProto*>* tensors) {
  for (auto& node : *nodes) {
    for (auto& attr : *node.mutable_attribute()) {
      if (node.op_type() == "Constant" && attr.name() == "value" && attr.has_t() &&
          node.output_size() == 1) {
        tensors->emplace(node.output(0), attr.mutable_t());
      }
      if (attr.has_g()) IndexTensors(attr.mutable_g(), tensors);
    }
  }
}

// A tensor that was the output of a ConstantOfShape becomes an initializer of its own (raw
// zeros, drawn over below) and the node goes.
Status Generate(const proto::TensorInit& init, onnx::ModelProto* model,
                std::unordered_map<std::string, onnx::TensorProto*>* tensors, uint64_t max_memory) {
  onnx::TensorProto_DataType type;
  if (!onnx::TensorProto_DataType_Parse(init.data_type(), &type) || !IsSupportedFloatType(type)) {
    return ModelError("cannot generate a tensor of type " + init.data_type());
  }
  {
    onnx::TensorProto shape;
    shape.set_data_type(type);
    for (int64_t d : init.shape()) shape.add_dims(d);
    REINIT_RETURN_IF_ERROR(CheckMemory(shape, max_memory)
                               .WithContext("tensor '" + init.name() + "' (ConstantOfShape)"));
  }
  auto* nodes = model->mutable_graph()->mutable_node();
  bool removed = false;
  for (int i = 0; i < nodes->size() && !removed; ++i) {
    const auto& n = nodes->Get(i);
    if (n.op_type() == "ConstantOfShape" && n.output_size() == 1 && n.output(0) == init.name()) {
      nodes->DeleteSubrange(i, 1);
      removed = true;
    }
  }
  if (!removed) return ModelError("no ConstantOfShape produces '" + init.name() + "'");
  onnx::TensorProto* t = model->mutable_graph()->add_initializer();
  t->set_name(init.name());
  t->set_data_type(type);
  int64_t count = 1;
  for (int64_t d : init.shape()) {
    t->add_dims(d);
    count *= d;
  }
  const int64_t width = type == onnx::TensorProto::DOUBLE  ? 8
                        : type == onnx::TensorProto::FLOAT ? 4
                                                           : 2;
  t->set_raw_data(std::string(static_cast<size_t>(count * width), '\0'));
  tensors->emplace(t->name(), t);
  // IR < 4 lists every initializer as a graph input too (onnx-caffe2's weightless models).
  if (model->ir_version() < 4) {
    auto* input = model->mutable_graph()->add_input();
    input->set_name(init.name());
    auto* tensor_type = input->mutable_type()->mutable_tensor_type();
    tensor_type->set_elem_type(type);
    for (int64_t d : init.shape()) tensor_type->mutable_shape()->add_dim()->set_dim_value(d);
  }
  return Status::Ok();
}

// What ApplyPlan works on: the model, its stored constants by name (IndexTensors), the store of
// its deferred tensors (or null) and the memory limit for tensors drawn whole.
struct ApplyTarget {
  onnx::ModelProto* model;
  std::unordered_map<std::string, onnx::TensorProto*> tensors;
  TensorStore* store;
  uint64_t max_memory;
};

// Calls fn(layer, init) for each tensor of each layer the plan does not skip: the weight, the
// bias, the other params; stops at the first error.
template <typename Fn>
Status ForEachPlannedTensor(const proto::Plan& plan, Fn fn) {
  for (const auto& layer : plan.layers()) {
    if (!layer.skipped().empty()) continue;
    REINIT_RETURN_IF_ERROR(fn(layer, layer.weight()));
    if (layer.has_bias()) REINIT_RETURN_IF_ERROR(fn(layer, layer.bias()));
    for (const auto& p : layer.params()) REINIT_RETURN_IF_ERROR(fn(layer, p));
  }
  return Status::Ok();
}

// A tensor the plan gives a copy of its own: the Identity that produced the name goes, a new
// initializer of that name takes its place. A ConstantOfShape's output is generated instead.
Status MaterializeTensor(const proto::TensorInit& init, ApplyTarget* target) {
  auto& tensors = target->tensors;
  onnx::ModelProto* model = target->model;
  if (init.scheme().empty() || init.scheme() == "keep" || tensors.count(init.name())) {
    return Status::Ok();
  }
  if (init.materialize() == "ConstantOfShape") {
    return Generate(init, model, &tensors, target->max_memory);
  }
  if (init.copy_of().empty()) return Status::Ok();
  auto source = tensors.find(init.copy_of());
  if (source == tensors.end()) return ModelError("no tensor '" + init.copy_of() + "' to copy");
  auto* nodes = model->mutable_graph()->mutable_node();
  for (int i = 0; i < nodes->size(); ++i) {
    const auto& n = nodes->Get(i);
    if (n.op_type() == "Identity" && n.output_size() == 1 && n.output(0) == init.name()) {
      nodes->DeleteSubrange(i, 1);
      break;
    }
  }
  onnx::TensorProto* copy = model->mutable_graph()->add_initializer();
  copy->CopyFrom(*source->second);
  copy->set_name(init.name());
  if (target->store) target->store->Duplicate(copy);
  // IR < 4 lists every initializer as a graph input too.
  for (const auto& in : model->graph().input()) {
    if (in.name() != init.copy_of()) continue;
    auto* added = model->mutable_graph()->add_input();
    added->CopyFrom(in);
    added->set_name(init.name());
    break;
  }
  tensors.emplace(copy->name(), copy);
  return Status::Ok();
}

// A quantized tensor `q` of the plan: drawn once its scale and zero point are in memory, and
// requantized. `ctx` names the layer and the tensor.
Status RequantizePlanned(const proto::TensorInit& init, uint64_t seed, onnx::TensorProto* q,
                         const ApplyTarget& target, const std::string& ctx) {
  const auto& tensors = target.tensors;
  auto scale = tensors.find(init.quant_scale());
  auto zp = tensors.find(init.quant_zero_point());
  if (scale == tensors.end()) return ModelError(ctx + ": no scale '" + init.quant_scale() + "'");
  REINIT_RETURN_IF_ERROR(CheckMemory(*q, target.max_memory).WithContext(ctx));
  if (target.store) {
    REINIT_RETURN_IF_ERROR(target.store->Resolve(q).WithContext(ctx));
    REINIT_RETURN_IF_ERROR(target.store->Resolve(scale->second).WithContext(ctx));
    if (zp != tensors.end())
      REINIT_RETURN_IF_ERROR(target.store->Resolve(zp->second).WithContext(ctx));
  }
  return Requantize(init, seed, q, scale->second, zp == tensors.end() ? nullptr : zp->second)
      .WithContext(ctx);
}

// Draws the tensor `init` of `layer` as planned, unless it is kept.
Status RewritePlanned(const proto::Layer& layer, const proto::TensorInit& init, uint64_t seed,
                      const ApplyTarget& target) {
  if (init.scheme().empty() || init.scheme() == "keep") return Status::Ok();
  auto it = target.tensors.find(init.name());
  const std::string ctx =
      "layer '" + layer.name() + "' (" + layer.op() + "), tensor '" + init.name() + "'";
  if (it == target.tensors.end()) return ModelError(ctx + ": no initializer of that name");
  if (!init.quant_scale().empty()) return RequantizePlanned(init, seed, it->second, target, ctx);
  return Rewrite(init, seed, it->second, target.store, target.max_memory).WithContext(ctx);
}

}  // namespace

Status ApplyPlan(const proto::Plan& plan, onnx::ModelProto* model, TensorStore* store,
                 uint64_t max_memory) {
  ApplyTarget target{model, {}, store, max_memory};
  IndexTensors(model->mutable_graph(), &target.tensors);
  for (auto& fn : *model->mutable_functions()) IndexNodes(fn.mutable_node(), &target.tensors);
  REINIT_RETURN_IF_ERROR(
      ForEachPlannedTensor(plan, [&](const proto::Layer&, const proto::TensorInit& init) {
        return MaterializeTensor(init, &target);
      }));
  REINIT_RETURN_IF_ERROR(
      ForEachPlannedTensor(plan, [&](const proto::Layer& layer, const proto::TensorInit& init) {
        return RewritePlanned(layer, init, plan.seed(), target);
      }));
  SetMetadata(model, "reinit.version", plan.tool_version());
  SetMetadata(model, "reinit.scheme", plan.scheme());
  SetMetadata(model, "reinit.seed", std::to_string(plan.seed()));
  return Status::Ok();
}

}  // namespace reinit
