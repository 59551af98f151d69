#!/usr/bin/python3
"""Generate the small sample ONNX models that reinit is developed and tested against.

Usage:  .venv/bin/python models/generate.py [--out DIR] [--only NAME]... [--blocks N]

  --out DIR     where to write (default: this folder)
  --only NAME   write only this model (file name without .onnx; repeatable);
                expected_activations.tsv is then not written
  --blocks N    the depth of residual_mlp (default 32 blocks), gpt_decoder (12) and
                bert_encoder (4); tests write deeper variants into a temporary folder with
                e.g. `--only gpt_decoder --blocks 48 --out DIR`. Only the defaults are
                committed.

Needs only numpy and onnx (the project venv, .ci/setup-venv); no torch, no network.
The output is deterministic: every model draws its weights from its own numpy Generator
with a fixed seed, so running the script twice writes byte-identical files.

All models: opset 17 (ai.onnx only), ir_version 8, float32 weights stored as raw_data
initializers with readable (PyTorch state_dict style) names, every node explicitly and
uniquely named, and each one passes onnx.checker.check_model(m, full_check=True).
Weights are random "trained-looking" values (normal, std 0.05; biases small and nonzero;
BatchNorm/LayerNorm parameters away from 1/0), so a re-initialization visibly changes them.

The models, and why each exists:

  mlp_tanh.onnx          x[N,32] -> fc1..fc10 (Gemm, transB=1, weight [out,in] as PyTorch's
                         Linear exports it; hidden width 64); fc1..fc8 -> Tanh, fc9 -> Sigmoid,
                         fc10 (10 outputs) -> Softmax. A deep saturating net: Xavier/Glorot
                         territory, with the gain differing between tanh (5/3) and sigmoid (1),
                         and a head whose verdict is "linear" because Softmax follows it.

  resnet_cnn.onnx        x[N,3,32,32] -> stem Conv3x3(16, no bias) -> BN -> Relu, two basic
                         residual blocks (the second one strided to 32 channels with a 1x1
                         stride-2 Conv + BN shortcut), GlobalAveragePool -> Flatten -> Gemm(10).
                         He/Kaiming territory. Tests walking through BatchNormalization and the
                         residual Add: a conv feeding Conv -> BN -> Add -> Relu is still "relu".

  transformer_block.onnx x[1,16,64] -> one post-LN encoder block (d_model 64, 4 heads, FFN 256):
                         q/k/v/out_proj/ffn1/ffn2 are MatMul with a constant weight [in,out]
                         followed by Add(bias); attention's MatMul(q, k^T) and MatMul(p, v) have
                         no constant operand and are not weight layers; LayerNormalization
                         (opset 17 op) with scale/bias; GELU in the Erf form PyTorch's exporter
                         writes before opset 20: Div(x, 1.4142135) -> Erf -> Add 1 -> Mul x ->
                         Mul 0.5. Tests MatMul layers (fan from a [in,out] weight) and
                         recognising a multi-node activation pattern.

  mlp_selu.onnx          x[N,48] -> fc1..fc4 (Gemm, transB=0: weight [in,out], the layout
                         opposite to mlp_tanh) each -> Selu (default attributes), width 64;
                         fc5 (10 outputs) straight to the graph output. LeCun-normal territory
                         (self-normalizing nets), and a check that transB is honoured when
                         computing fans.

  grouped_convnet.onnx   x[N,8,16,16] -> conv1 3x3 8->32 -> Relu; dw1 depthwise 3x3 (group 32,
                         weight [32,1,3,3]) -> Clip(0,6); pw1 1x1 32->64 -> Clip(0,6);
                         gconv1 3x3 group 4 64->64 (weight [64,16,3,3]) -> LeakyRelu(0.1);
                         GlobalAveragePool -> Flatten -> Gemm fc(10). Tests fans of grouped and
                         depthwise convs, Clip(0,6) read from initializer inputs as relu6, and
                         LeakyRelu's slope entering the He gain.

  dcgan_generator.onnx   z[N,16,1,1] -> deconv1 ConvTranspose 16->64 k4 s1 (no bias) -> BN ->
                         Relu (4x4); deconv2 64->32 k4 s2 p1 -> BN -> Relu (8x8); deconv3 32->3
                         k4 s2 p1 with bias -> Tanh (16x16). Tests ConvTranspose, whose weight
                         is [C_in, C_out/group, kH, kW], so fan_in and fan_out swap places
                         compared with Conv.

  plain_cnn.onnx         x[N,3,32,32] -> conv1..conv8 3x3 (16 to 64 channels, two of them
                         stride 2), each with a bias and followed by Relu, no normalization and
                         no shortcut; GlobalAveragePool -> Flatten -> Gemm fc(10). The net where
                         He/Kaiming matters most: nothing rescales the signal between layers
                         (the signal-propagation chart's ReLU CNN).

  residual_mlp.onnx      x[N,64] (sklearn's digits: 64 features, 10 classes) -> stem Gemm
                         64->64 -> 32 blocks x = x + fc2(relu(fc1(x))) (blocks.{i}.fc1/fc2,
                         Gemm 64->64 transB=1 with biases, Add blocks.{i}.add), no
                         normalization -> head Gemm 64->10 -> logits. Initializer names are a
                         torch state_dict's (stem.weight, blocks.0.fc1.weight, ..., head.bias),
                         so tests load them into an nn.Module. The net where per-layer He
                         fails: 32 un-normalized residual branches add up (Fixup territory).

  gpt_decoder.onnx       ids int64[1,16] -> wte [96,32] (Gather) + wpe [16,32] (Gather of a
                         constant positions tensor) -> 12 pre-LN GPT-2 blocks (d_model 32, 4
                         heads, nanoGPT names): h.{i}.ln_1 -> attn.c_q/c_k/c_v (MatMul [32,32] +
                         bias), heads by Reshape/Transpose, MatMul(q, k^T) / sqrt(8) + a
                         constant causal mask (0, -1e9 above the diagonal) -> Softmax -> MatMul
                         v, heads merged, attn.c_proj, x = x + o; h.{i}.ln_2 -> mlp.c_fc 32->128
                         -> Erf GELU -> mlp.c_proj 128->32, x = x + m; ln_f; the head tied to
                         the token table: lm_head = MatMul(x, Transpose(wte.weight)) -> logits
                         [1,16,96]. Two residual branches per block, each ending in a c_proj
                         (GPT-2's 1/sqrt(2 n_layer) scaling), and a tied embedding.

  bert_encoder.onnx      ids int64[1,16] -> word [96,32] + position [16,32] tables (Gather),
                         added -> embeddings.LayerNorm -> 4 post-LN BERT layers (Hugging Face
                         names, encoder.layer.{i}.*): attention.self.query/key/value (MatMul +
                         bias), scores / sqrt(8), Softmax (no mask), attention.output.dense,
                         x = attention.output.LayerNorm(x + a); intermediate.dense 32->128 ->
                         Erf GELU -> output.dense 128->32, x = output.LayerNorm(x + f) ->
                         last_hidden_state [1,16,32]. A residual stream normalized after each
                         join (post-LN), where no depth scaling is wanted.

It also writes expected_activations.tsv: one line per weight layer (model file, layer node name,
op type, canonical activation name), derived from the same builder calls that create the
models, for tests to compare reinit's activation detection against. gpt_decoder's lm_head has no
row: it shares wte's weight, which reinit plans at the Gather and lists lm_head as sharing.
"""

import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
PRODUCER = "reinit models/generate.py"
W_STD = 0.05  # std of "trained" weights
B_STD = 0.02  # std of "trained" biases


class Builder:
    """Collects nodes, initializers and the expected-activation table for one model."""

    def __init__(self, file_name, seed):
        self.file_name = file_name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.init_names = set()
        self.node_names = set()
        self.layers = []  # (node name, op type, activation)

    # ---- low-level -------------------------------------------------------------------------
    def init(self, name, array):
        assert name not in self.init_names, name
        self.init_names.add(name)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, name, value, dtype=np.float32):
        """A scalar (or small) constant stored as an initializer (not a weight)."""
        return self.init(name, np.array(value, dtype=dtype))

    def weight(self, name, shape, std=W_STD):
        return self.init(name, self.rng.normal(0.0, std, size=shape).astype(np.float32))

    def bias(self, name, n):
        return self.init(name, self.rng.normal(0.0, B_STD, size=(n,)).astype(np.float32))

    def node(self, op, name, inputs, out=None, **attrs):
        assert name not in self.node_names, name
        self.node_names.add(name)
        out = out or name + "_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def layer(self, op, name, inputs, act, out=None, **attrs):
        """A weight layer; `act` is the activation reinit is expected to find after it."""
        self.layers.append((name, op, act))
        return self.node(op, name, inputs, out=out, **attrs)

    # ---- activations -----------------------------------------------------------------------
    def activation(self, kind, x, prefix):
        """Emit the nodes for activation `kind` after tensor x; returns the output tensor."""
        if kind == "linear":
            return x
        if kind == "relu":
            return self.node("Relu", prefix + ".relu", [x])
        if kind == "tanh":
            return self.node("Tanh", prefix + ".tanh", [x])
        if kind == "sigmoid":
            return self.node("Sigmoid", prefix + ".sigmoid", [x])
        if kind == "selu":
            return self.node("Selu", prefix + ".selu", [x])
        if kind == "leaky_relu":
            return self.node("LeakyRelu", prefix + ".leaky_relu", [x], alpha=0.1)
        if kind == "relu6":
            if "relu6.min" not in self.init_names:
                self.const("relu6.min", 0.0)
                self.const("relu6.max", 6.0)
            return self.node("Clip", prefix + ".relu6", [x, "relu6.min", "relu6.max"])
        if kind == "gelu":  # PyTorch exporter's Erf form (opset < 20)
            if "gelu.sqrt2" not in self.init_names:
                self.const("gelu.sqrt2", 1.4142135)
                self.const("gelu.one", 1.0)
                self.const("gelu.half", 0.5)
            d = self.node("Div", prefix + ".gelu.div", [x, "gelu.sqrt2"])
            e = self.node("Erf", prefix + ".gelu.erf", [d])
            a = self.node("Add", prefix + ".gelu.add", [e, "gelu.one"])
            m = self.node("Mul", prefix + ".gelu.mul", [x, a])
            return self.node("Mul", prefix + ".gelu.mul_half", [m, "gelu.half"])
        raise ValueError(kind)

    # ---- layers ----------------------------------------------------------------------------
    def gemm(self, name, x, n_in, n_out, act, trans_b=1, emit_act=True, out=None):
        shape = (n_out, n_in) if trans_b else (n_in, n_out)
        w = self.weight(name + ".weight", shape)
        b = self.bias(name + ".bias", n_out)
        y = self.layer("Gemm", name, [x, w, b], act, out=out, alpha=1.0, beta=1.0,
                       transB=trans_b)
        return self.activation(act, y, name) if emit_act else y

    def conv(self, name, x, c_in, c_out, k, act, stride=1, pad=0, group=1, bias=True,
             emit_act=True):
        w = self.weight(name + ".weight", (c_out, c_in // group, k, k))
        inputs = [x, w] + ([self.bias(name + ".bias", c_out)] if bias else [])
        y = self.layer("Conv", name, inputs, act, dilations=[1, 1], group=group,
                       kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])
        return self.activation(act, y, name) if emit_act else y

    def conv_transpose(self, name, x, c_in, c_out, k, act, stride=1, pad=0, bias=True):
        w = self.weight(name + ".weight", (c_in, c_out, k, k))
        inputs = [x, w] + ([self.bias(name + ".bias", c_out)] if bias else [])
        return self.layer("ConvTranspose", name, inputs, act, dilations=[1, 1], group=1,
                          kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])

    def matmul(self, name, x, n_in, n_out, act):
        """MatMul with a constant [in, out] weight, then Add of the bias (no activation)."""
        w = self.weight(name + ".weight", (n_in, n_out))
        y = self.layer("MatMul", name, [x, w], act)
        return self.node("Add", name + ".add_bias", [y, self.bias(name + ".bias", n_out)])

    def batch_norm(self, name, x, c):
        r = self.rng
        scale = self.init(name + ".weight", (1.0 + 0.1 * r.normal(size=c)).astype(np.float32))
        shift = self.init(name + ".bias", (0.05 * r.normal(size=c)).astype(np.float32))
        mean = self.init(name + ".running_mean", (0.1 * r.normal(size=c)).astype(np.float32))
        var = self.init(name + ".running_var", r.uniform(0.5, 1.5, size=c).astype(np.float32))
        return self.node("BatchNormalization", name, [x, scale, shift, mean, var],
                         epsilon=1e-5, momentum=0.9)

    def layer_norm(self, name, x, d, out=None):
        r = self.rng
        scale = self.init(name + ".weight", (1.0 + 0.1 * r.normal(size=d)).astype(np.float32))
        shift = self.init(name + ".bias", (0.05 * r.normal(size=d)).astype(np.float32))
        return self.node("LayerNormalization", name, [x, scale, shift], out=out, axis=-1,
                         epsilon=1e-5)

    # ---- finish ----------------------------------------------------------------------------
    def model(self, graph_name, inputs, outputs, doc):
        """inputs: (name, shape) pairs, float; or (name, shape, TensorProto type) triples."""
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(i[0], i[2] if len(i) > 2 else TensorProto.FLOAT,
                                           i[1]) for i in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
            initializer=self.inits)
        m = helper.make_model(graph, producer_name=PRODUCER, producer_version="1",
                              opset_imports=[helper.make_opsetid("", OPSET)], doc_string=doc)
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m, full_check=True)
        return m


# ------------------------------------------------------------------------------------------
# The models
# ------------------------------------------------------------------------------------------

def mlp_tanh():
    b = Builder("mlp_tanh.onnx", seed=1001)
    acts = ["tanh"] * 8 + ["sigmoid", "linear"]
    widths = [32] + [64] * 9 + [10]
    x = "x"
    for i, act in enumerate(acts):
        x = b.gemm(f"fc{i + 1}", x, widths[i], widths[i + 1], act, trans_b=1)
    y = b.node("Softmax", "softmax", [x], out="y", axis=1)
    return b, b.model("mlp_tanh", [("x", ["N", 32])], [(y, ["N", 10])],
                      "Deep tanh/sigmoid MLP, Gemm transB=1, Softmax head")


def resnet_cnn():
    b = Builder("resnet_cnn.onnx", seed=1002)
    # stem
    x = b.conv("conv1", "x", 3, 16, 3, "relu", pad=1, bias=False, emit_act=False)
    x = b.batch_norm("bn1", x, 16)
    x = b.activation("relu", x, "stem")

    def block(p, x, c_in, c_out, stride):
        y = b.conv(p + ".conv1", x, c_in, c_out, 3, "relu", stride=stride, pad=1,
                   bias=False, emit_act=False)
        y = b.batch_norm(p + ".bn1", y, c_out)
        y = b.activation("relu", y, p + ".block")
        # conv2 -> BN -> Add(residual) -> Relu: still "relu"
        y = b.conv(p + ".conv2", y, c_out, c_out, 3, "relu", pad=1, bias=False,
                   emit_act=False)
        y = b.batch_norm(p + ".bn2", y, c_out)
        if stride != 1 or c_in != c_out:
            s = b.conv(p + ".downsample.0", x, c_in, c_out, 1, "relu", stride=stride,
                       bias=False, emit_act=False)
            s = b.batch_norm(p + ".downsample.1", s, c_out)
        else:
            s = x
        y = b.node("Add", p + ".add", [y, s])
        return b.activation("relu", y, p + ".out")

    x = block("layer1", x, 16, 16, 1)
    x = block("layer2", x, 16, 32, 2)
    x = b.node("GlobalAveragePool", "avgpool", [x])
    x = b.node("Flatten", "flatten", [x], axis=1)
    y = b.gemm("fc", x, 32, 10, "linear", trans_b=1, out="logits")
    return b, b.model("resnet_cnn", [("x", ["N", 3, 32, 32])], [(y, ["N", 10])],
                      "ResNet-style CNN: stem + 2 basic blocks (second strided), BN, Gemm head")


def transformer_block():
    b = Builder("transformer_block.onnx", seed=1003)
    S, D, H = 16, 64, 4
    Dh = D // H
    heads = b.const("attn.heads_shape", [1, S, H, Dh], np.int64)
    merged = b.const("attn.merged_shape", [1, S, D], np.int64)
    scale = b.const("attn.scale", np.sqrt(Dh))

    def split(t, name, perm):
        r = b.node("Reshape", name + ".reshape", [t, heads])
        return b.node("Transpose", name + ".transpose", [r], perm=perm)

    x = "x"
    q = split(b.matmul("q", x, D, D, "linear"), "q", [0, 2, 1, 3])   # [1,H,S,Dh]
    k = split(b.matmul("k", x, D, D, "linear"), "k", [0, 2, 3, 1])   # [1,H,Dh,S] (k^T)
    v = split(b.matmul("v", x, D, D, "linear"), "v", [0, 2, 1, 3])   # [1,H,S,Dh]
    s = b.node("MatMul", "attn.scores", [q, k])                      # [1,H,S,S]
    s = b.node("Div", "attn.scale_div", [s, scale])
    p = b.node("Softmax", "attn.softmax", [s], axis=-1)
    c = b.node("MatMul", "attn.context", [p, v])                     # [1,H,S,Dh]
    c = b.node("Transpose", "attn.merge.transpose", [c], perm=[0, 2, 1, 3])
    c = b.node("Reshape", "attn.merge.reshape", [c, merged])         # [1,S,D]
    o = b.matmul("out_proj", c, D, D, "linear")
    x1 = b.node("Add", "residual1", [x, o])
    x1 = b.layer_norm("norm1", x1, D)
    f = b.matmul("ffn1", x1, D, 4 * D, "gelu")
    f = b.activation("gelu", f, "ffn1")
    f = b.matmul("ffn2", f, 4 * D, D, "linear")
    x2 = b.node("Add", "residual2", [x1, f])
    y = b.layer_norm("norm2", x2, D, out="y")
    return b, b.model("transformer_block", [("x", [1, S, D])], [(y, [1, S, D])],
                      "Post-LN transformer encoder block, d_model 64, 4 heads, Erf GELU FFN")


def mlp_selu():
    b = Builder("mlp_selu.onnx", seed=1004)
    widths = [48, 64, 64, 64, 64, 10]
    acts = ["selu"] * 4 + ["linear"]
    x = "x"
    for i, act in enumerate(acts):
        out = "y" if i == len(acts) - 1 else None  # fc5 writes the graph output directly
        x = b.gemm(f"fc{i + 1}", x, widths[i], widths[i + 1], act, trans_b=0, out=out)
    y = x
    return b, b.model("mlp_selu", [("x", ["N", 48])], [(y, ["N", 10])],
                      "SELU MLP, Gemm transB=0 (weight [in, out]), linear head")


def grouped_convnet():
    b = Builder("grouped_convnet.onnx", seed=1005)
    x = b.conv("conv1", "x", 8, 32, 3, "relu", pad=1)
    x = b.conv("dw1", x, 32, 32, 3, "relu6", pad=1, group=32)
    x = b.conv("pw1", x, 32, 64, 1, "relu6")
    x = b.conv("gconv1", x, 64, 64, 3, "leaky_relu", pad=1, group=4)
    x = b.node("GlobalAveragePool", "avgpool", [x])
    x = b.node("Flatten", "flatten", [x], axis=1)
    y = b.gemm("fc", x, 64, 10, "linear", trans_b=1, out="logits")
    return b, b.model("grouped_convnet", [("x", ["N", 8, 16, 16])], [(y, ["N", 10])],
                      "Depthwise / pointwise / grouped conv net with Relu, Clip(0,6), LeakyRelu")


def dcgan_generator():
    b = Builder("dcgan_generator.onnx", seed=1006)
    x = b.conv_transpose("deconv1", "z", 16, 64, 4, "relu", stride=1, pad=0, bias=False)
    x = b.activation("relu", b.batch_norm("bn1", x, 64), "deconv1")           # 4x4
    x = b.conv_transpose("deconv2", x, 64, 32, 4, "relu", stride=2, pad=1, bias=False)
    x = b.activation("relu", b.batch_norm("bn2", x, 32), "deconv2")           # 8x8
    x = b.conv_transpose("deconv3", x, 32, 3, 4, "tanh", stride=2, pad=1, bias=True)
    y = b.node("Tanh", "deconv3.tanh", [x], out="img")                    # 16x16
    return b, b.model("dcgan_generator", [("z", ["N", 16, 1, 1])], [(y, ["N", 3, 16, 16])],
                      "DCGAN generator: ConvTranspose + BN + Relu, Tanh output")


def plain_cnn():
    b = Builder("plain_cnn.onnx", seed=1007)
    # VGG-style: eight 3x3 convs with bias, each -> Relu, no normalization, no shortcut; two
    # stride-2 convs halve 32x32 to 8x8.
    chans = [3, 16, 16, 32, 32, 32, 64, 64, 64]
    strides = [1, 1, 2, 1, 1, 2, 1, 1]
    x = "x"
    for i in range(8):
        x = b.conv(f"conv{i + 1}", x, chans[i], chans[i + 1], 3, "relu", stride=strides[i], pad=1)
    x = b.node("GlobalAveragePool", "avgpool", [x])
    x = b.node("Flatten", "flatten", [x], axis=1)
    y = b.gemm("fc", x, 64, 10, "linear", trans_b=1, out="logits")
    return b, b.model("plain_cnn", [("x", ["N", 3, 32, 32])], [(y, ["N", 10])],
                      "Plain ReLU CNN without normalization: 8 convs, Gemm head")


def residual_mlp(blocks=32):
    b = Builder("residual_mlp.onnx", seed=1008)
    # A BN-free residual MLP on sklearn's digits (64 features, 10 classes), as PyTorch would
    # export nn.Linear layers (Gemm, transB=1, weight [out, in], names as in a state_dict):
    # stem, then `blocks` blocks x = x + fc2(relu(fc1(x))) with no normalization, then head.
    D = 64
    x = b.gemm("stem", "x", D, D, "linear", trans_b=1)
    for i in range(blocks):
        p = f"blocks.{i}"
        h = b.gemm(p + ".fc1", x, D, D, "relu", trans_b=1)
        h = b.gemm(p + ".fc2", h, D, D, "linear", trans_b=1)
        x = b.node("Add", p + ".add", [x, h])
    y = b.gemm("head", x, D, 10, "linear", trans_b=1, out="logits")
    return b, b.model("residual_mlp", [("x", ["N", D])], [(y, ["N", 10])],
                      f"BN-free residual MLP, width {D}, {blocks} blocks x + fc2(relu(fc1(x))), "
                      "Gemm transB=1")


def _attention(b, p, x, S, D, H, causal):
    """Multi-head self-attention on x[1,S,D] (MatMul weights [D,D] + bias); returns the
    projected output [1,S,D] before the residual Add. Names: p.c_q/c_k/c_v/c_proj (GPT-2) or
    the BERT names given by `p` being a dict."""
    Dh = D // H
    heads = "attn.heads_shape"
    if heads not in b.init_names:
        b.const(heads, [1, S, H, Dh], np.int64)
        b.const("attn.merged_shape", [1, S, D], np.int64)
        b.const("attn.scale", np.sqrt(Dh))
    if causal and "attn.causal_mask" not in b.init_names:
        b.const("attn.causal_mask", np.triu(np.full((S, S), -1e9), k=1))

    def split(t, name, perm):
        r = b.node("Reshape", name + ".reshape", [t, heads])
        return b.node("Transpose", name + ".transpose", [r], perm=perm)

    q = split(b.matmul(p["q"], x, D, D, "linear"), p["q"], [0, 2, 1, 3])  # [1,H,S,Dh]
    k = split(b.matmul(p["k"], x, D, D, "linear"), p["k"], [0, 2, 3, 1])  # [1,H,Dh,S] (k^T)
    v = split(b.matmul(p["v"], x, D, D, "linear"), p["v"], [0, 2, 1, 3])  # [1,H,S,Dh]
    a = p["attn"]
    s = b.node("MatMul", a + ".scores", [q, k])                           # [1,H,S,S]
    s = b.node("Div", a + ".scale_div", [s, "attn.scale"])
    if causal:
        s = b.node("Add", a + ".mask", [s, "attn.causal_mask"])
    s = b.node("Softmax", a + ".softmax", [s], axis=-1)
    c = b.node("MatMul", a + ".context", [s, v])                          # [1,H,S,Dh]
    c = b.node("Transpose", a + ".merge.transpose", [c], perm=[0, 2, 1, 3])
    c = b.node("Reshape", a + ".merge.reshape", [c, "attn.merged_shape"])  # [1,S,D]
    return b.matmul(p["o"], c, D, D, "linear")


def _embeddings(b, tok, pos, S, V, D):
    """Token table [V,D] and position table [S,D], each read by a Gather, added."""
    t = b.node("Gather", tok, [b.weight(tok + ".weight", (V, D)), "ids"], axis=0)  # [1,S,D]
    positions = b.const(pos + ".positions", np.arange(S), np.int64)
    e = b.node("Gather", pos, [b.weight(pos + ".weight", (S, D)), positions], axis=0)  # [S,D]
    return b.node("Add", "embeddings.add", [t, e])


def gpt_decoder(blocks=12):
    b = Builder("gpt_decoder.onnx", seed=1009)
    # Pre-LN GPT-2 / nanoGPT decoder: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); ln_f; the
    # head tied to the token table: logits = x @ wte^T.
    S, D, H, V = 16, 32, 4, 96
    x = _embeddings(b, "wte", "wpe", S, V, D)
    for i in range(blocks):
        p = f"h.{i}"
        h = b.layer_norm(p + ".ln_1", x, D)
        a = _attention(b, {"q": p + ".attn.c_q", "k": p + ".attn.c_k", "v": p + ".attn.c_v",
                           "o": p + ".attn.c_proj", "attn": p + ".attn"}, h, S, D, H, True)
        x = b.node("Add", p + ".attn.residual", [x, a])
        h = b.layer_norm(p + ".ln_2", x, D)
        h = b.matmul(p + ".mlp.c_fc", h, D, 4 * D, "gelu")
        h = b.activation("gelu", h, p + ".mlp.c_fc")
        h = b.matmul(p + ".mlp.c_proj", h, 4 * D, D, "linear")
        x = b.node("Add", p + ".mlp.residual", [x, h])
    x = b.layer_norm("ln_f", x, D)
    wte_t = b.node("Transpose", "lm_head.transpose", ["wte.weight"], perm=[1, 0])  # [D,V]
    # Not a row of expected_activations.tsv: the layer shares wte's weight, which reinit plans
    # (once) at the Gather, so the plan lists lm_head as skipped (shared), with no activation
    # of its own to check (its verdict would be linear: the graph output).
    y = b.node("MatMul", "lm_head", [x, wte_t], out="logits")
    return b, b.model("gpt_decoder", [("ids", [1, S], TensorProto.INT64)], [(y, [1, S, V])],
                      f"Pre-LN GPT-2-style decoder, {blocks} blocks, d_model {D}, {H} heads, "
                      f"vocab {V}, causal mask, Erf GELU MLP, head tied to wte")


def bert_encoder(blocks=4):
    b = Builder("bert_encoder.onnx", seed=1010)
    # Post-LN BERT encoder (Hugging Face names): x = LN(x + attn(x)); x = LN(x + ffn(x)).
    S, D, H, V = 16, 32, 4, 96
    x = _embeddings(b, "embeddings.word_embeddings", "embeddings.position_embeddings", S, V, D)
    x = b.layer_norm("embeddings.LayerNorm", x, D)
    for i in range(blocks):
        p = f"encoder.layer.{i}"
        a = _attention(b, {"q": p + ".attention.self.query", "k": p + ".attention.self.key",
                           "v": p + ".attention.self.value", "o": p + ".attention.output.dense",
                           "attn": p + ".attention.self"}, x, S, D, H, False)
        x = b.node("Add", p + ".attention.output.residual", [x, a])
        x = b.layer_norm(p + ".attention.output.LayerNorm", x, D)
        h = b.matmul(p + ".intermediate.dense", x, D, 4 * D, "gelu")
        h = b.activation("gelu", h, p + ".intermediate.dense")
        h = b.matmul(p + ".output.dense", h, 4 * D, D, "linear")
        x = b.node("Add", p + ".output.residual", [x, h])
        last = i == blocks - 1
        x = b.layer_norm(p + ".output.LayerNorm", x, D, out="last_hidden_state" if last else None)
    return b, b.model("bert_encoder", [("ids", [1, S], TensorProto.INT64)], [(x, [1, S, D])],
                      f"Post-LN BERT-style encoder, {blocks} layers, d_model {D}, {H} heads, "
                      f"vocab {V}, Erf GELU FFN")


MODELS = [mlp_tanh, resnet_cnn, transformer_block, mlp_selu, grouped_convnet, dcgan_generator,
          plain_cnn, residual_mlp, gpt_decoder, bert_encoder]
# The models whose depth --blocks sets (each has its own default).
DEPTH_MODELS = {residual_mlp, gpt_decoder, bert_encoder}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="output folder (default: the folder this script is in)")
    names = [m.__name__ for m in MODELS]
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="write only this model (repeatable; " + ", ".join(names) + "); "
                    "expected_activations.tsv is then not written")
    ap.add_argument("--blocks", type=int, metavar="N",
                    help="number of blocks of " + ", ".join(
                        m.__name__ for m in MODELS if m in DEPTH_MODELS) +
                    " (default: 32, 12, 4)")
    args = ap.parse_args(argv)
    chosen = MODELS
    if args.only:
        wanted = [n[:-5] if n.endswith(".onnx") else n for n in args.only]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            ap.error(f"unknown model {', '.join(unknown)} (models: {', '.join(names)})")
        chosen = [m for m in MODELS if m.__name__ in wanted]
    if args.blocks is not None:
        if args.blocks < 1:
            ap.error("--blocks must be at least 1")
        if not any(m in DEPTH_MODELS for m in chosen):
            ap.error("--blocks applies to " + ", ".join(
                m.__name__ for m in MODELS if m in DEPTH_MODELS) + " only")
    os.makedirs(args.out, exist_ok=True)

    rows = ["model\tlayer\top\tactivation"]
    for make in chosen:
        if make in DEPTH_MODELS and args.blocks is not None:
            b, m = make(blocks=args.blocks)
        else:
            b, m = make()
        data = m.SerializeToString()
        path = os.path.join(args.out, b.file_name)
        with open(path, "wb") as f:
            f.write(data)
        rows += [f"{b.file_name}\t{n}\t{op}\t{act}" for n, op, act in b.layers]
        print(f"{b.file_name:24s} {len(data):8d} bytes  {len(b.layers):3d} layers  "
              f"sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    if not args.only:
        with open(os.path.join(args.out, "expected_activations.tsv"), "w", newline="\n") as f:
            f.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
