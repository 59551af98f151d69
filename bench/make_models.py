#!/usr/bin/python3
"""Build the benchmark's synthetic models (bench/README.md says what each target measures).

Usage:  .venv/bin/python bench/make_models.py [OUT_DIR] [--which mlp,llm-f16,llm-f32]
            [--size-gib 1] [--mlp-layers 16] [--llm-gib 8] [--llm-layers 32] [--vocab 32000]
            [--seed 0] [--force]

OUT_DIR defaults to build/bench-models/. Needs python3-onnx and python3-numpy.

  mlp.onnx      x[N, W] -> 16 x (Gemm, transB=1, weight [W, W] as PyTorch's Linear exports it,
                bias [W]) with Relu after each but the last; float32, every weight in raw_data
                inside the one .onnx file. W is chosen (a multiple of 64) so that the weights
                total --size-gib (4096 for 1 GiB: 16 x 4096 x 4096 x 4 bytes).
  llm-f16.onnx  an LLM-shaped decoder in float16: token embedding [V, H] read by Gather,
                --llm-layers blocks of (RMSNorm written out as Pow/ReduceMean/Add/Sqrt/Div/Mul
                by its scale, q/k/v MatMul [H, H], softmax attention over heads, o MatMul
                [H, H], residual Add, RMSNorm, gate/up MatMul [H, F] with SiLU written out as
                x*Sigmoid(x) on gate, down MatMul [F, H], residual Add), a final RMSNorm and an
                untied lm_head MatMul [H, V]. llm-f32.onnx is the same in float32 with
                LayerNormalization (scale only) and GELU in the Erf form. H (a multiple of 64)
                and F (~8H/3, a multiple of 64) are chosen so that the weights total --llm-gib.
                Every float tensor of 1 KiB or more is external data in one file beside the
                model (<name>.onnx.data), each at an offset that is a multiple of 4096; the
                small constants (eps, shapes) stay inside the .onnx.

Both writers stream: a weight is never whole in memory except as slices of a shared pool of
random values (std 0.02, "trained-looking", seeded), so every byte of the data is written (no
sparse holes; the 4096-byte alignment padding is written as real zero bytes) and the 8 GiB
models need well under 100 MB of memory. mlp.onnx is written field by field in exactly the bytes
onnx.save would write (canonical protobuf order); for models up to 256 MiB this is verified by
reading the file back with onnx and serializing it again.

Beside each model, <name>.json records the parameters it was built with; a model whose record
matches the request (and whose files have the recorded sizes) is not rebuilt unless --force.
The record is written last, so an interrupted build is redone.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "reinit bench/make_models.py"
FORMAT = 1  # bump when the models' layout changes, so that old builds are not reused
POOL_ELEMS = 1 << 23  # 8 Mi values of shared randomness
CHUNK_ELEMS = 1 << 22  # values written per write() call
ALIGN = 4096
GIB = 1 << 30


# ---- protobuf wire format (just what canonical ONNX needs) ---------------------------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def len_field(field, length):
    """The tag and length prefix of a length-delimited field."""
    return varint(field << 3 | 2) + varint(length)


class Pool:
    """Random values to slice tensors from: real, dense, reproducible, cheap to write."""

    def __init__(self, seed, dtype):
        self.rng = np.random.default_rng(seed)
        self.values = (0.02 * self.rng.standard_normal(POOL_ELEMS + CHUNK_ELEMS)).astype(dtype)
        self.values[self.values == 0] = dtype(0.01)  # no zero elements at all

    def chunks(self, n):
        """Yields contiguous arrays totalling n values, each from a random place in the pool."""
        while n > 0:
            k = min(n, CHUNK_ELEMS)
            start = int(self.rng.integers(0, POOL_ELEMS))
            yield self.values[start:start + k]
            n -= k

    def norm_scale(self, n, dtype):
        return (1.0 + 0.1 * self.rng.standard_normal(n)).astype(dtype)


def atomic_json(path, record):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def up_to_date(out_dir, name, params):
    """True when <name>.json records these params and every file it lists has its size."""
    path = os.path.join(out_dir, name + ".json")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return False
    if record.get("params") != params:
        return False
    for file_name, size in record.get("files", {}).items():
        p = os.path.join(out_dir, file_name)
        if not os.path.isfile(p) or os.path.getsize(p) != size:
            return False
    return True


def remove_model(out_dir, name):
    for suffix in (".json", ".onnx", ".onnx.data"):
        p = os.path.join(out_dir, name + suffix)
        if os.path.exists(p):
            os.remove(p)


# ---- mlp.onnx -----------------------------------------------------------------------------
def mlp_width(size_gib, layers):
    w = math.sqrt(size_gib * GIB / (layers * 4))
    return max(64, int(round(w / 64)) * 64)


def build_mlp(out_dir, size_gib, layers, seed):
    width = mlp_width(size_gib, layers)
    name = "mlp"
    params = {"format": FORMAT, "width": width, "layers": layers, "seed": seed}
    if up_to_date(out_dir, name, params):
        print(f"{name}.onnx: up to date (width {width})")
        return
    remove_model(out_dir, name)
    pool = Pool(seed, np.float32)

    nodes, inits = [], []  # inits: TensorProtos without their data
    x = "x"
    for i in range(layers):
        w, b = f"fc{i}.weight", f"fc{i}.bias"
        y = f"fc{i}_out"
        nodes.append(helper.make_node("Gemm", [x, w, b], [y], name=f"fc{i}", alpha=1.0,
                                      beta=1.0, transB=1))
        inits.append(TensorProto(name=w, data_type=TensorProto.FLOAT, dims=[width, width]))
        inits.append(TensorProto(name=b, data_type=TensorProto.FLOAT, dims=[width]))
        x = y
        if i + 1 < layers:
            x = f"relu{i}_out"
            nodes.append(helper.make_node("Relu", [y], [x], name=f"relu{i}"))
    head_graph = helper.make_graph(nodes, "mlp", [], [])
    tail_graph = helper.make_graph(
        [], "", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", width])])
    tail_graph.ClearField("name")
    model = helper.make_model(helper.make_graph([], "", [], []), producer_name=PRODUCER,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.ClearField("graph")
    model.doc_string = (f"reinit benchmark: {layers} Gemm {width}x{width} float32 layers with "
                        "Relu between them, weights in raw_data")

    # Canonical order: ModelProto fields 1-6, graph (7), then opset_import (8) and later;
    # GraphProto node (1), name (2), initializer (5), then input (11), output (12);
    # TensorProto dims (1), data_type (2), name (8), raw_data (9).
    model_head = onnx.ModelProto()
    model_head.CopyFrom(model)
    model_head.ClearField("opset_import")
    model_tail = onnx.ModelProto()
    model_tail.opset_import.extend(model.opset_import)
    head = head_graph.SerializeToString()
    tail = tail_graph.SerializeToString()
    tensors = []
    for t in inits:
        meta = t.SerializeToString()
        nbytes = 4 * int(np.prod(t.dims))
        body = len(meta) + len(len_field(9, nbytes)) + nbytes
        tensors.append((t, meta, nbytes, len_field(5, body)))
    graph_len = len(head) + len(tail) + sum(len(p) + len(m) + len(len_field(9, n)) + n
                                            for _, m, n, p in tensors)

    path = os.path.join(out_dir, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model_head.SerializeToString())
        f.write(len_field(7, graph_len))
        f.write(head)
        for t, meta, nbytes, prefix in tensors:
            f.write(prefix)
            f.write(meta)
            f.write(len_field(9, nbytes))
            for chunk in pool.chunks(nbytes // 4):
                f.write(chunk)
        f.write(tail)
        f.write(model_tail.SerializeToString())
    size = os.path.getsize(path)
    if size >= 2 * GIB:
        os.remove(path)
        sys.exit(f"make_models: {name}.onnx would be {size} bytes, over protobuf's 2 GiB")

    onnx.checker.check_model(path)
    if size <= 256 << 20:  # the bytes are exactly what onnx itself writes
        with open(path, "rb") as f:
            data = f.read()
        if onnx.load_from_string(data).SerializeToString() != data:
            sys.exit(f"make_models: {path} is not in canonical protobuf form")
    atomic_json(os.path.join(out_dir, name + ".json"),
                {"params": params, "files": {name + ".onnx": size},
                 "weight_bytes": sum(n for _, _, n, _ in tensors)})
    print(f"{name}.onnx: {layers} x Gemm {width}x{width}, {size / GIB:.3f} GiB")


# ---- llm-f16.onnx, llm-f32.onnx ------------------------------------------------------------
def llm_sizes(hidden, vocab, layers):
    mlp = max(64, int(round(hidden * 8 / 3 / 64)) * 64)
    per_block = 4 * hidden * hidden + 3 * hidden * mlp + 2 * hidden
    return mlp, 2 * vocab * hidden + layers * per_block + hidden


def llm_hidden(target_bytes, elem, vocab, layers):
    """The multiple of 64 whose model's weights come nearest to target_bytes."""
    best = None
    h = 64
    while True:
        mlp, params = llm_sizes(h, vocab, layers)
        err = abs(params * elem - target_bytes)
        if best is None or err < best[0]:
            best = (err, h, mlp, params)
        if params * elem > target_bytes:
            return best[1:]
        h += 64


class LlmBuilder:
    def __init__(self, dtype, np_dtype):
        self.dtype = dtype
        self.np_dtype = np_dtype
        self.nodes = []
        self.small = []  # initializers inside the .onnx
        self.weights = []  # (name, shape, kind): external data, in file order

    def node(self, op, name, inputs, **attrs):
        out = name + "_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def const(self, name, value, dtype=None):
        self.small.append(numpy_helper.from_array(np.array(value, dtype=dtype or self.np_dtype),
                                                  name))
        return name

    def weight(self, name, shape, kind="weight"):
        self.weights.append((name, list(shape), kind))
        return name

    def rms_norm(self, name, x, hidden):
        scale = self.weight(name + ".weight", [hidden], "norm")
        sq = self.node("Pow", name + ".pow", [x, "two"])
        mean = self.node("ReduceMean", name + ".mean", [sq], axes=[-1], keepdims=1)
        var = self.node("Add", name + ".add_eps", [mean, "eps"])
        rms = self.node("Sqrt", name + ".sqrt", [var])
        normed = self.node("Div", name + ".div", [x, rms])
        return self.node("Mul", name + ".mul", [normed, scale])

    def layer_norm(self, name, x, hidden):
        scale = self.weight(name + ".weight", [hidden], "norm")
        return self.node("LayerNormalization", name, [x, scale], axis=-1, epsilon=1e-5)


def build_llm(out_dir, name, dtype, total_gib, layers, vocab, seed):
    np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    elem = np.dtype(np_dtype).itemsize
    hidden, mlp, n_params = llm_hidden(total_gib * GIB, elem, vocab, layers)
    head_dim = 128 if hidden % 128 == 0 else 64
    heads = hidden // head_dim
    params = {"format": FORMAT, "hidden": hidden, "mlp": mlp, "heads": heads, "vocab": vocab,
              "layers": layers, "dtype": int(dtype), "seed": seed}
    if up_to_date(out_dir, name, params):
        print(f"{name}.onnx: up to date (hidden {hidden}, mlp {mlp})")
        return
    remove_model(out_dir, name)
    llama = dtype == TensorProto.FLOAT16  # RMSNorm + SiLU; the float32 one: LayerNorm + GELU

    b = LlmBuilder(dtype, np_dtype)
    b.const("eps", 1e-5 if not llama else 1e-6)
    b.const("two", 2.0)
    b.const("attn_scale", 1.0 / math.sqrt(head_dim))
    b.const("heads_shape", [0, 0, heads, head_dim], np.int64)
    b.const("hidden_shape", [0, 0, hidden], np.int64)
    if not llama:
        b.const("gelu.sqrt2", math.sqrt(2.0))
        b.const("gelu.one", 1.0)
        b.const("gelu.half", 0.5)
    norm = b.rms_norm if llama else b.layer_norm

    x = b.node("Gather", "embed_tokens", [b.weight("embed_tokens.weight", [vocab, hidden]),
                                           "input_ids"], axis=0)
    for i in range(layers):
        p = f"layers.{i}"
        h = norm(p + ".input_norm", x, hidden)
        proj = {}
        for k in ("q", "k", "v"):
            w = b.weight(f"{p}.attn.{k}_proj.weight", [hidden, hidden])
            y = b.node("MatMul", f"{p}.attn.{k}_proj", [h, w])
            y = b.node("Reshape", f"{p}.attn.{k}_heads", [y, "heads_shape"])
            perm = [0, 2, 3, 1] if k == "k" else [0, 2, 1, 3]
            proj[k] = b.node("Transpose", f"{p}.attn.{k}_t", [y], perm=perm)
        s = b.node("MatMul", f"{p}.attn.scores", [proj["q"], proj["k"]])
        s = b.node("Mul", f"{p}.attn.scale", [s, "attn_scale"])
        s = b.node("Softmax", f"{p}.attn.softmax", [s], axis=-1)
        a = b.node("MatMul", f"{p}.attn.context", [s, proj["v"]])
        a = b.node("Transpose", f"{p}.attn.context_t", [a], perm=[0, 2, 1, 3])
        a = b.node("Reshape", f"{p}.attn.merge", [a, "hidden_shape"])
        a = b.node("MatMul", f"{p}.attn.o_proj",
                   [a, b.weight(f"{p}.attn.o_proj.weight", [hidden, hidden])])
        x = b.node("Add", f"{p}.attn.residual", [x, a])
        h = norm(p + ".post_attn_norm", x, hidden)
        g = b.node("MatMul", f"{p}.mlp.gate_proj",
                   [h, b.weight(f"{p}.mlp.gate_proj.weight", [hidden, mlp])])
        u = b.node("MatMul", f"{p}.mlp.up_proj",
                   [h, b.weight(f"{p}.mlp.up_proj.weight", [hidden, mlp])])
        if llama:
            sg = b.node("Sigmoid", f"{p}.mlp.silu.sigmoid", [g])
            act = b.node("Mul", f"{p}.mlp.silu.mul", [g, sg])
        else:
            d = b.node("Div", f"{p}.mlp.gelu.div", [g, "gelu.sqrt2"])
            e = b.node("Erf", f"{p}.mlp.gelu.erf", [d])
            e = b.node("Add", f"{p}.mlp.gelu.add", [e, "gelu.one"])
            m = b.node("Mul", f"{p}.mlp.gelu.mul", [g, e])
            act = b.node("Mul", f"{p}.mlp.gelu.mul_half", [m, "gelu.half"])
        m = b.node("Mul", f"{p}.mlp.gated", [act, u])
        m = b.node("MatMul", f"{p}.mlp.down_proj",
                   [m, b.weight(f"{p}.mlp.down_proj.weight", [mlp, hidden])])
        x = b.node("Add", f"{p}.mlp.residual", [x, m])
    h = norm("final_norm", x, hidden)
    b.nodes.append(helper.make_node("MatMul", [h, b.weight("lm_head.weight", [hidden, vocab])],
                                    ["logits"], name="lm_head"))

    data_name = name + ".onnx.data"
    data_path = os.path.join(out_dir, data_name)
    pool = Pool(seed, np_dtype)
    externals = []
    offset = 0
    zeros = bytes(ALIGN)
    with open(data_path, "wb") as f:
        for wname, shape, kind in b.weights:
            pad = -offset % ALIGN
            if pad:
                f.write(zeros[:pad])  # real bytes, not a hole left by seek
                offset += pad
            n = int(np.prod(shape))
            if kind == "norm":
                f.write(pool.norm_scale(n, np_dtype))
            else:
                for chunk in pool.chunks(n):
                    f.write(chunk)
            t = TensorProto(name=wname, data_type=dtype, dims=shape,
                            data_location=TensorProto.EXTERNAL)
            for key, value in (("location", data_name), ("offset", str(offset)),
                               ("length", str(n * elem))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            externals.append(t)
            offset += n * elem
    data_size = os.path.getsize(data_path)
    assert data_size == offset, (data_size, offset)

    graph = helper.make_graph(
        b.nodes, name, [helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                                      ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", dtype, ["batch", "seq", vocab])],
        initializer=externals + b.small)
    model = helper.make_model(graph, producer_name=PRODUCER,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = (f"reinit benchmark: LLM-shaped decoder, {layers} blocks, hidden "
                        f"{hidden}, mlp {mlp}, {heads} heads, vocab {vocab}, "
                        f"{TensorProto.DataType.Name(dtype)} weights in {data_name}")
    path = os.path.join(out_dir, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    onnx.checker.check_model(path)  # the checker resolves the data file beside the path
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    atomic_json(os.path.join(out_dir, name + ".json"),
                {"params": params, "weight_bytes": n_params * elem,
                 "files": {name + ".onnx": os.path.getsize(path), data_name: data_size}})
    print(f"{name}.onnx: {layers} blocks, hidden {hidden}, mlp {mlp}, vocab {vocab}, "
          f"{n_params / 1e9:.2f}G params, data {data_size / GIB:.3f} GiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?",
                    default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                         "build", "bench-models"))
    ap.add_argument("--which", default="mlp,llm-f16,llm-f32",
                    help="comma-separated: mlp, llm-f16, llm-f32")
    ap.add_argument("--size-gib", type=float, default=1.0, help="mlp.onnx weights (GiB)")
    ap.add_argument("--mlp-layers", type=int, default=16)
    ap.add_argument("--llm-gib", type=float, default=8.0, help="each LLM's weights (GiB)")
    ap.add_argument("--llm-layers", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()
    which = [w for w in args.which.split(",") if w]
    unknown = set(which) - {"mlp", "llm-f16", "llm-f32"}
    if unknown:
        ap.error(f"unknown model(s) {', '.join(sorted(unknown))}; choose mlp, llm-f16, llm-f32")
    os.makedirs(args.out_dir, exist_ok=True)
    if args.force:
        for w in which:
            remove_model(args.out_dir, w)
    if "mlp" in which:
        build_mlp(args.out_dir, args.size_gib, args.mlp_layers, args.seed)
    for w, dtype in (("llm-f16", TensorProto.FLOAT16), ("llm-f32", TensorProto.FLOAT)):
        if w in which:
            build_llm(args.out_dir, w, dtype, args.llm_gib, args.llm_layers, args.vocab,
                      args.seed)


if __name__ == "__main__":
    main()
