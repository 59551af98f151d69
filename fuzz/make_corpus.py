#!/usr/bin/python3
"""Write the fuzzer's seed corpus: tiny models, one per thing reinit handles, and broken ones.

Usage:  .venv/bin/python fuzz/make_corpus.py [--out DIR]    (default DIR: fuzz/corpus)

Needs onnx and numpy (the project venv, .ci/setup-venv). Deterministic: running it twice
writes the same bytes. Besides the files written here, fuzz/corpus/ holds copies of the small
models of models/ and models/corpus/ (see fuzz/README.md); this script copies those too.

The models are as small as they can be while still taking the code path they are for, so that
the fuzzer's mutations are cheap; the weights' raw data is at least 256 bytes where it should be
streamed (the fuzz target defers tensors from 256 bytes). External data locations name the files
the fuzz target puts beside the model (fuzz/model_fuzzer.cc): weights.bin (1024 floats),
sub/more.bin (256 floats), escape.bin (a symbolic link out of the folder), sub/ (a folder).
"""

import argparse
import gzip
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Models of the repository copied as they are (small enough; gzipped ones are unpacked).
# The larger ones (mlp_tanh, transformer_block, dcgan_generator, 150-200 KB) are left out: every
# execution on an input of that size costs the fuzzer several times more, and the tiny models
# below cover what they hold.
COPIED = [
    "models/mlp_selu.onnx",
    "models/resnet_cnn.onnx",
    "models/grouped_convnet.onnx",
    "models/corpus/bigru.eval.onnx.gz",
    "models/corpus/bigru.train.onnx.gz",
]


def rng(seed):
    return np.random.default_rng(seed)


def w(name, shape, seed=0, dtype=np.float32):
    return numpy_helper.from_array(rng(seed).normal(0, 0.05, size=shape).astype(dtype), name)


def model(nodes, inputs, outputs, inits, opset=17, ir=8, functions=(), domains=(), **graph_kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits, **graph_kw)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains]
    m = helper.make_model(g, opset_imports=opsets, functions=list(functions))
    m.ir_version = ir
    m.producer_name = "reinit fuzz/make_corpus.py"
    return m


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def n(op, inputs, outputs, name, **attrs):
    return helper.make_node(op, inputs, outputs, name=name, **attrs)


def external(t, location, offset, length=None):
    """Moves t's bytes out: EXTERNAL with the given location, offset and length."""
    length = len(t.raw_data) if length is None else length
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


# ---- valid models --------------------------------------------------------------------------

def gemm_relu():
    return model([n("Gemm", ["x", "fc_w", "fc_b"], ["h"], "fc", transB=1),
                  n("Relu", ["h"], ["y"], "relu")],
                 [vi("x", [2, 16])], [vi("y", [2, 8])], [w("fc_w", [8, 16]), w("fc_b", [8], 1)])


def deep_tanh_mlp():
    """Eight Gemm -> Tanh layers: a chain long enough for auto to choose orthogonal."""
    nodes, inits, x = [], [], "x"
    for i in range(8):
        nodes += [n("Gemm", [x, "fc%d_w" % i, "fc%d_b" % i], ["h%d" % i], "fc%d" % i, transB=1),
                  n("Tanh", ["h%d" % i], ["t%d" % i], "tanh%d" % i)]
        inits += [w("fc%d_w" % i, [8, 8], i), w("fc%d_b" % i, [8], 100 + i)]
        x = "t%d" % i
    nodes[-1].output[0] = "y"
    return model(nodes, [vi("x", [2, 8])], [vi("y", [2, 8])], inits)


def matmul_gelu():
    c = [numpy_helper.from_array(np.array(v, np.float32), k)
         for k, v in (("sqrt2", 1.4142135), ("one", 1.0), ("half", 0.5))]
    return model([n("MatMul", ["x", "w"], ["m"], "proj"),
                  n("Add", ["m", "b"], ["h"], "proj_add"),
                  n("Div", ["h", "sqrt2"], ["d"], "div"), n("Erf", ["d"], ["e"], "erf"),
                  n("Add", ["e", "one"], ["e1"], "add1"), n("Mul", ["h", "e1"], ["p"], "mul"),
                  n("Mul", ["p", "half"], ["y"], "mul_half")],
                 [vi("x", [1, 3, 16])], [vi("y", [1, 3, 8])],
                 [w("w", [16, 8]), w("b", [8], 1)] + c)


def conv_bn_relu():
    return model([n("Conv", ["x", "c_w", "c_b"], ["c"], "conv", pads=[1, 1, 1, 1]),
                  n("BatchNormalization", ["c", "s", "sh", "mean", "var"], ["b"], "bn"),
                  n("Relu", ["b"], ["y"], "relu")],
                 [vi("x", [1, 4, 5, 5])], [vi("y", [1, 4, 5, 5])],
                 [w("c_w", [4, 4, 3, 3]), w("c_b", [4], 1), w("s", [4], 2), w("sh", [4], 3),
                  w("mean", [4], 4), numpy_helper.from_array(np.ones(4, np.float32), "var")])


def depthwise_conv3d_relu6():
    c = [numpy_helper.from_array(np.array(0, np.float32), "lo"),
         numpy_helper.from_array(np.array(6, np.float32), "hi")]
    return model([n("Conv", ["x", "dw"], ["c"], "dw3d", group=4),
                  n("Clip", ["c", "lo", "hi"], ["y"], "relu6")],
                 [vi("x", [1, 4, 3, 3, 3])], [vi("y", [1, 4, 2, 2, 2])],
                 [w("dw", [4, 1, 2, 2, 2])] + c)


def conv1d_grouped_leaky():
    return model([n("Conv", ["x", "g_w"], ["c"], "gconv", group=2, strides=[2]),
                  n("LeakyRelu", ["c"], ["y"], "lrelu", alpha=0.2)],
                 [vi("x", [1, 4, 9])], [vi("y", [1, 8, 4])], [w("g_w", [8, 2, 3])])


def convtranspose_tanh():
    return model([n("ConvTranspose", ["x", "t_w", "t_b"], ["c"], "deconv", strides=[2, 2],
                    group=2),
                  n("Tanh", ["c"], ["y"], "tanh")],
                 [vi("x", [1, 4, 2, 2])], [vi("y", [1, 6, 5, 5])],
                 [w("t_w", [4, 3, 3, 3]), w("t_b", [6], 1)])


def embedding_tied():
    return model([n("Gather", ["table", "ids"], ["e"], "embed"),
                  n("Transpose", ["table"], ["tt"], "tied_t", perm=[1, 0]),
                  n("MatMul", ["e", "tt"], ["y"], "lm_head")],
                 [vi("ids", [2, 3], TensorProto.INT64)], [vi("y", [2, 3, 20])],
                 [w("table", [20, 8])])


def lstm_peepholes():
    h, i = 3, 4
    return model([n("LSTM", ["x", "W", "R", "B", "", "", "", "P"], ["y"], "lstm",
                    hidden_size=h, activations=["Sigmoid", "Tanh", "Relu"])],
                 [vi("x", [2, 1, i])], [vi("y", [2, 1, 1, h])],
                 [w("W", [1, 4 * h, i]), w("R", [1, 4 * h, h], 1), w("B", [1, 8 * h], 2),
                  w("P", [1, 3 * h], 3)])


def gru_bidirectional():
    h, i = 3, 4
    return model([n("GRU", ["x", "W", "R", "B"], ["y"], "gru", hidden_size=h,
                    direction="bidirectional", linear_before_reset=1)],
                 [vi("x", [2, 1, i])], [vi("y", [2, 2, 1, h])],
                 [w("W", [2, 3 * h, i]), w("R", [2, 3 * h, h], 1), w("B", [2, 6 * h], 2)])


def rnn_tanh():
    h, i = 4, 4
    return model([n("RNN", ["x", "W", "R", "B"], ["y", "yh"], "rnn", hidden_size=h)],
                 [vi("x", [2, 1, i])], [vi("y", [2, 1, 1, h]), vi("yh", [1, 1, h])],
                 [w("W", [1, h, i]), w("R", [1, h, h], 1), w("B", [1, 2 * h], 2)])


def norms():
    return model([n("LayerNormalization", ["x", "ln_s", "ln_b"], ["a"], "ln", axis=-1),
                  n("InstanceNormalization", ["a", "in_s", "in_b"], ["y"], "inorm")],
                 [vi("x", [1, 4, 6])], [vi("y", [1, 4, 6])],
                 [w("ln_s", [6]), w("ln_b", [6], 1), w("in_s", [4], 2), w("in_b", [4], 3)])


def group_norm_opset18():
    """GroupNormalization is opset 18, newer than Debian's onnx checks: written unchecked."""
    return model([n("GroupNormalization", ["x", "gn_s", "gn_b"], ["y"], "gnorm", num_groups=2)],
                 [vi("x", [1, 4, 6])], [vi("y", [1, 4, 6])],
                 [w("gn_s", [2], 4), w("gn_b", [2], 5)], opset=18)


def layernorm_written_out():
    c = [numpy_helper.from_array(np.array(v, np.float32), k)
         for k, v in (("two", 2.0), ("eps", 1e-5))]
    return model([n("MatMul", ["x", "w"], ["h"], "fc"),
                  n("ReduceMean", ["h"], ["mu"], "mean", axes=[-1]),
                  n("Sub", ["h", "mu"], ["d"], "sub"), n("Pow", ["d", "two"], ["d2"], "pow"),
                  n("ReduceMean", ["d2"], ["v"], "var", axes=[-1]),
                  n("Add", ["v", "eps"], ["ve"], "add_eps"), n("Sqrt", ["ve"], ["sd"], "sqrt"),
                  n("Div", ["d", "sd"], ["nrm"], "div"), n("Mul", ["nrm", "g"], ["sc"], "scale"),
                  n("Add", ["sc", "beta"], ["z"], "shift"), n("Sigmoid", ["z"], ["y"], "sig")],
                 [vi("x", [2, 8])], [vi("y", [2, 8])],
                 [w("w", [8, 8]), w("g", [8], 1), w("beta", [8], 2)] + c, opset=17)


def qdq_conv():
    q = numpy_helper.from_array(
        rng(0).integers(-100, 100, size=(4, 2, 3, 3)).astype(np.int8), "wq")
    s = numpy_helper.from_array(np.full(4, 0.01, np.float32), "ws")
    z = numpy_helper.from_array(np.zeros(4, np.int8), "wz")
    return model([n("DequantizeLinear", ["wq", "ws", "wz"], ["wf"], "dq", axis=0),
                  n("Conv", ["x", "wf"], ["c"], "qconv"), n("Relu", ["c"], ["y"], "relu")],
                 [vi("x", [1, 2, 4, 4])], [vi("y", [1, 4, 2, 2])], [q, s, z])


def constant_of_shape():
    shape = numpy_helper.from_array(np.array([16, 8], np.int64), "shape")
    return model([n("ConstantOfShape", ["shape"], ["wc"], "cos",
                    value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
                  n("Gemm", ["x", "wc"], ["y"], "fc")],
                 [vi("x", [2, 16])], [vi("y", [2, 8])], [shape])


def constant_node_and_views():
    """A Constant node's weight, read through Cast and Reshape; Concat of Slices of one tensor;
    an Identity-merged copy used by a second layer."""
    cw = helper.make_tensor("cw", TensorProto.FLOAT, [8, 8],
                            rng(0).normal(0, 0.05, 64).astype(np.float32).tolist())
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)
    return model([n("Constant", [], ["k"], "const", value=cw),
                  n("Cast", ["k"], ["kc"], "cast", to=TensorProto.FLOAT),
                  n("Reshape", ["kc", "shape"], ["kr"], "reshape"),
                  n("MatMul", ["x", "kr"], ["a"], "fc1"), n("Tanh", ["a"], ["at"], "tanh"),
                  n("Slice", ["big", "s0", "e0", "ax"], ["p0"], "slice0"),
                  n("Slice", ["big", "s1", "e1", "ax"], ["p1"], "slice1"),
                  n("Concat", ["p1", "p0"], ["cat"], "concat", axis=0),
                  n("MatMul", ["at", "cat"], ["b"], "fc2"),
                  n("Identity", ["big2"], ["big2c"], "merged"),
                  n("MatMul", ["b", "big2"], ["c"], "fc3"),
                  n("MatMul", ["c", "big2c"], ["y"], "fc4")],
                 [vi("x", [2, 8])], [vi("y", [2, 8])],
                 [i64("shape", [8, 8]), w("big", [8, 8], 1), i64("s0", [0]), i64("e0", [4]),
                  i64("s1", [4]), i64("e1", [8]), i64("ax", [0]), w("big2", [8, 8], 2)])


def subgraphs_and_function():
    """An If whose branches hold layers (one weight from the enclosing graph) and a call of a
    model-local function whose body's Gemm gets its weight as an argument."""
    then_g = helper.make_graph([n("Gemm", ["x", "outer_w"], ["t"], "then_fc", transB=1)], "then",
                               [], [vi("t", [2, 8])])
    else_g = helper.make_graph([n("Gemm", ["x", "inner_w"], ["e"], "else_fc", transB=1)],
                               "else", [], [vi("e", [2, 8])], initializer=[w("inner_w", [8, 8], 1)])
    fn = helper.make_function("local", "Dense", ["a", "k"], ["o"],
                              [n("Gemm", ["a", "k"], ["g"], "body_fc", transB=1),
                               n("Relu", ["g"], ["o"], "body_relu")],
                              [helper.make_opsetid("", 17)])
    return model([n("If", ["cond"], ["i"], "branch", then_branch=then_g, else_branch=else_g),
                  helper.make_node("Dense", ["i", "fw"], ["y"], name="call", domain="local")],
                 [vi("x", [2, 8]), vi("cond", [], TensorProto.BOOL)], [vi("y", [2, 8])],
                 [w("outer_w", [8, 8]), w("fw", [8, 8], 2)], functions=[fn],
                 domains=[("local", 1)])


def loop_body_layer():
    body = helper.make_graph(
        [n("MatMul", ["s_in", "lw"], ["m"], "loop_fc"), n("Tanh", ["m"], ["s_out"], "loop_tanh"),
         n("Identity", ["c_in"], ["c_out"], "keep")],
        "body", [vi("i", [], TensorProto.INT64), vi("c_in", [], TensorProto.BOOL),
                 vi("s_in", [2, 8])],
        [vi("c_out", [], TensorProto.BOOL), vi("s_out", [2, 8])])
    trip = numpy_helper.from_array(np.array(3, np.int64), "trip")
    cond = numpy_helper.from_array(np.array(True), "cond")
    return model([n("Loop", ["trip", "cond", "x"], ["y"], "loop", body=body)],
                 [vi("x", [2, 8])], [vi("y", [2, 8])], [trip, cond, w("lw", [8, 8])])


def half_types_and_typed_fields():
    """FLOAT16, BFLOAT16 and DOUBLE weights; a weight in float_data instead of raw_data."""
    f16 = w("w16", [16, 16], 0, np.float16)
    bf = helper.make_tensor("wbf", TensorProto.BFLOAT16, [16, 16],
                            np.zeros(256, np.uint16).tobytes(), raw=True)
    f64 = w("w64", [16, 16], 2, np.float64)
    typed = helper.make_tensor("wtyped", TensorProto.FLOAT, [16, 16],
                               rng(3).normal(0, 0.05, 256).astype(np.float32).tolist())
    return model([n("MatMul", ["x16", "w16"], ["a"], "fc16"), n("Relu", ["a"], ["y16"], "r16"),
                  n("MatMul", ["xbf", "wbf"], ["ybf"], "fcbf"),
                  n("MatMul", ["x64", "w64"], ["y64"], "fc64"),
                  n("Gemm", ["x", "wtyped"], ["y"], "fctyped")],
                 [vi("x16", [2, 16], TensorProto.FLOAT16), vi("xbf", [2, 16], TensorProto.BFLOAT16),
                  vi("x64", [2, 16], TensorProto.DOUBLE), vi("x", [2, 16])],
                 [vi("y16", [2, 16], TensorProto.FLOAT16), vi("ybf", [2, 16], TensorProto.BFLOAT16),
                  vi("y64", [2, 16], TensorProto.DOUBLE), vi("y", [2, 16])], [f16, bf, f64, typed])


def ir3_initializers_as_inputs():
    m = model([n("Gemm", ["x", "fc_w", "fc_b"], ["y"], "fc")], [vi("x", [2, 8])],
              [vi("y", [2, 8])], [w("fc_w", [8, 8]), w("fc_b", [8], 1)], opset=8, ir=3)
    m.graph.input.extend([vi("fc_w", [8, 8]), vi("fc_b", [8])])
    return m


def external_data():
    """Weights in weights.bin (at offsets 0 and 1024) and sub/more.bin, as written beside the
    model by the fuzz target."""
    a = external(w("fc1_w", [16, 16]), "weights.bin", 0)
    b = external(w("fc1_b", [16], 1), "weights.bin", 1024)
    c = external(w("fc2_w", [8, 16], 2), "sub/more.bin", 0, 512)
    return model([n("Gemm", ["x", "fc1_w", "fc1_b"], ["h"], "fc1", transB=1),
                  n("Relu", ["h"], ["r"], "relu"),
                  n("Gemm", ["r", "fc2_w"], ["y"], "fc2", transB=1)],
                 [vi("x", [2, 16])], [vi("y", [2, 8])], [a, b, c])


def sparse_and_unknown_type():
    """A sparse initializer, and an initializer of a type this onnx does not know (FLOAT8, 17),
    both kept as they are."""
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "sp")
    idx = numpy_helper.from_array(np.array([0, 5], np.int64), "sp_idx")
    sp = helper.make_sparse_tensor(values, idx, [8])
    f8 = TensorProto(name="f8", dims=[4], data_type=17, raw_data=b"\x01\x02\x03\x04")
    m = model([n("Gemm", ["x", "fc_w"], ["y"], "fc", transB=1)], [vi("x", [2, 8])],
              [vi("y", [2, 8])], [w("fc_w", [8, 8]), f8], sparse_initializer=[sp])
    return m


VALID = [gemm_relu, deep_tanh_mlp, matmul_gelu, conv_bn_relu, depthwise_conv3d_relu6, conv1d_grouped_leaky,
         convtranspose_tanh, embedding_tied, lstm_peepholes, gru_bidirectional, rnn_tanh, norms, group_norm_opset18,
         layernorm_written_out, qdq_conv, constant_of_shape, constant_node_and_views,
         subgraphs_and_function, loop_body_layer, half_types_and_typed_fields,
         ir3_initializers_as_inputs, external_data, sparse_and_unknown_type]


# ---- broken models -------------------------------------------------------------------------

def bad_giant_constant_of_shape():
    m = constant_of_shape()
    m.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "shape"))
    m.graph.input[0].CopyFrom(vi("x", [2, 1 << 20]))
    return m


def bad_dims_disagree_with_data():
    m = gemm_relu()
    m.graph.initializer[0].dims[:] = [1 << 30, 1 << 30]
    return m


def bad_negative_dim():
    m = gemm_relu()
    m.graph.initializer[0].dims[:] = [-8, 16]
    return m


def bad_forged_deferral_marker():
    """A tensor that claims to be deferred (the marker TensorStore puts in loaded models)."""
    m = gemm_relu()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "reinit.deferred", "0"
    return m


def bad_forged_marker_aliasing():
    """Two weights of the same shape, the second claiming the first one's deferral payload: a
    streamed run once wrote it with the first one's bytes."""
    m = model([n("MatMul", ["x", "a"], ["h"], "fc1"), n("MatMul", ["h", "b"], ["y"], "fc2")],
              [vi("x", [2, 16])], [vi("y", [2, 16])], [w("a", [16, 16]), w("b", [16, 16], 1)])
    t = m.graph.initializer[1]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "reinit.deferred", "0"
    return m


def bad_external_locations():
    """Locations that must be refused: leaving the folder, through a link, absolute, a folder,
    past the end of the file, a length that disagrees with the dims."""
    ts = [external(w("a", [4, 4]), "../outside.bin", 0),
          external(w("b", [4, 4]), "escape.bin", 0),
          external(w("c", [4, 4]), "/etc/hostname", 0),
          external(w("d", [4, 4]), "sub", 0),
          external(w("e", [4, 4]), "weights.bin", 4090),
          external(w("f", [4, 4]), "weights.bin", 0, 60)]
    nodes = [n("MatMul", ["x" if i == 0 else "h%d" % i, t.name], ["h%d" % (i + 1)], "fc%d" % i)
             for i, t in enumerate(ts)]
    return model(nodes, [vi("x", [2, 4])], [vi("h6", [2, 4])], ts)


def bad_conv_group():
    m = conv_bn_relu()
    m.graph.node[0].attribute.extend([helper.make_attribute("group", 3)])
    return m


def bad_duplicate_initializer():
    m = gemm_relu()
    m.graph.initializer.extend([w("fc_w", [8, 16], 5)])
    return m


def bad_lstm_shapes():
    m = lstm_peepholes()
    m.graph.initializer[1].dims[:] = [1, 12, 2, 2]  # R of rank 4
    return m


BROKEN = [bad_giant_constant_of_shape, bad_dims_disagree_with_data, bad_negative_dim,
          bad_forged_deferral_marker, bad_forged_marker_aliasing, bad_external_locations,
          bad_conv_group, bad_duplicate_initializer, bad_lstm_shapes]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for old in os.listdir(args.out):
        if old.endswith(".onnx"):
            os.remove(os.path.join(args.out, old))
    for f in VALID + BROKEN:
        data = f().SerializeToString()
        with open(os.path.join(args.out, f.__name__ + ".onnx"), "wb") as out:
            out.write(data)
    # Bytes that are not a whole model: a valid one cut short, and one that is not protobuf.
    cut = gemm_relu().SerializeToString()
    with open(os.path.join(args.out, "bad_truncated.onnx"), "wb") as out:
        out.write(cut[: len(cut) * 2 // 3])
    with open(os.path.join(args.out, "bad_not_protobuf.onnx"), "wb") as out:
        out.write(b"\x08\x08\x3a\xff\xff\xff\xff\x0f" + b"reinit" * 4)
    for rel in COPIED:
        name = os.path.basename(rel).replace(".onnx.gz", ".onnx")
        dest = os.path.join(args.out, "repo_" + name)
        if rel.endswith(".gz"):
            with gzip.open(os.path.join(ROOT, rel), "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copyfile(os.path.join(ROOT, rel), dest)


if __name__ == "__main__":
    main()
