#!/usr/bin/python3
"""The benchmark's baseline: the re-initialization a user would script with onnx and numpy.

Usage:  .venv/bin/python bench/baseline_numpy.py IN.onnx OUT.onnx [--seed N] [--verbose]

What it does, in the plainest efficient way (onnx.load, one numpy Generator, in-place scaling,
numpy_helper.from_array, onnx.save):

  Gemm B (transB honoured), MatMul constant B [..., K, N]   the weight, fan_in K, fan_out N
     followed (directly or through a bias/residual Add) by
       Relu                      he-normal      std = sqrt(2) / sqrt(fan_in)
       x*Sigmoid(x) (SiLU)       he-normal      std = 1.6765 / sqrt(fan_in)
       Div/Erf/Add/Mul (GELU)    he-normal      std = 1.5335 / sqrt(fan_in)
       anything else             xavier-uniform bound = sqrt(6 / (fan_in + fan_out))
  Gemm C, the constant of an Add right after a MatMul       zero
  Gather table [V, D] (embedding)                           normal, std = 1 / sqrt(D)
  LayerNormalization scale / bias                           one / zero
  a constant Mul right after a Div (RMSNorm written out)    one

These are the schemes and gains `reinit --scheme auto` chooses on the benchmark's models
(bench/make_models.py); it is not a general re-implementation of auto (no other ops, no deep
tanh stacks, no recurrent layers). run.py checks on every run that the two outputs agree tensor
by tensor in mean, standard deviation and shape of the distribution.

Two styles of drawing (--style):
  obvious (default)  the way the issue that set the target describes ("the obvious Python way:
                     load, draw, from_array, save"): np.random.normal(0, std, shape) and
                     np.random.uniform(-b, b, shape), in float64, cast to the tensor's type.
  tuned              numpy at its fastest: Generator.standard_normal(dtype=float32) and
                     Generator.random(dtype=float32), scaled in place; float16 tensors drawn in
                     float32 and cast.
A model with external data is loaded with it and saved with all tensors of 1 KiB or more in
OUT.onnx.data. Single-threaded, as numpy's random generators are.
"""

import argparse
import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

GAINS = {"relu": math.sqrt(2.0), "silu": 1.6765, "gelu": 1.5335}


def activation_after(out, consumers, depth=0):
    """The activation a layer output reaches, looking through Add (bias, residual) nodes."""
    for node in consumers.get(out, []):
        if node.op_type == "Relu":
            return "relu"
        if node.op_type == "Sigmoid":
            sig = node.output[0]
            if any(n.op_type == "Mul" and out in n.input and sig in n.input
                   for n in consumers.get(sig, [])):
                return "silu"
        if node.op_type == "Div":
            if any(n.op_type == "Erf" for n in consumers.get(node.output[0], [])):
                return "gelu"
        if node.op_type == "Add" and depth < 2:
            act = activation_after(node.output[0], consumers, depth + 1)
            if act != "linear":
                return act
    return "linear"


def plan(graph):
    """Maps initializer name -> ("normal", std) | ("uniform", bound) | ("const", value)."""
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    todo = {}

    def weight(name, fan_in, fan_out, out):
        act = activation_after(out, consumers)
        if act in GAINS:
            todo.setdefault(name, ("normal", GAINS[act] / math.sqrt(fan_in)))
        else:
            todo.setdefault(name, ("uniform", math.sqrt(6.0 / (fan_in + fan_out))))

    for n in graph.node:
        ins = list(n.input)
        if n.op_type == "Gemm" and len(ins) > 1 and ins[1] in inits:
            dims = list(inits[ins[1]].dims)
            trans_b = any(a.name == "transB" and a.i for a in n.attribute)
            fan_in, fan_out = (dims[1], dims[0]) if trans_b else (dims[0], dims[1])
            weight(ins[1], fan_in, fan_out, n.output[0])
            if len(ins) > 2 and ins[2] in inits:
                todo.setdefault(ins[2], ("const", 0.0))
        elif n.op_type == "MatMul" and ins[1] in inits and len(inits[ins[1]].dims) >= 2:
            dims = list(inits[ins[1]].dims)
            weight(ins[1], dims[-2], dims[-1], n.output[0])
            for c in consumers.get(n.output[0], []):
                if c.op_type == "Add":
                    for i in c.input:
                        if i in inits and list(inits[i].dims) == [dims[-1]]:
                            todo.setdefault(i, ("const", 0.0))
        elif n.op_type == "Gather" and ins[0] in inits and len(inits[ins[0]].dims) == 2:
            todo.setdefault(ins[0], ("normal", 1.0 / math.sqrt(inits[ins[0]].dims[1])))
        elif n.op_type == "LayerNormalization":
            if len(ins) > 1 and ins[1] in inits:
                todo.setdefault(ins[1], ("const", 1.0))
            if len(ins) > 2 and ins[2] in inits:
                todo.setdefault(ins[2], ("const", 0.0))
        elif n.op_type == "Mul":
            const = [i for i in ins if i in inits and len(inits[i].dims) == 1]
            other = [i for i in ins if i not in inits]
            if const and other and getattr(producers.get(other[0]), "op_type", "") == "Div":
                todo.setdefault(const[0], ("const", 1.0))
    return todo


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--style", choices=["obvious", "tuned"], default="obvious")
    args = ap.parse_args()

    model = onnx.load(args.input)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL
                   for t in onnx.load(args.input, load_external_data=False).graph.initializer)
    rng = np.random.default_rng(args.seed)
    np.random.seed(args.seed)
    todo = plan(model.graph)
    for i, t in enumerate(model.graph.initializer):
        if t.name not in todo:
            continue
        kind, value = todo[t.name]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
        shape = tuple(t.dims)
        if kind == "normal" and args.style == "obvious":
            w = np.random.normal(0.0, value, shape)
        elif kind == "uniform" and args.style == "obvious":
            w = np.random.uniform(-value, value, shape)
        elif kind == "normal":
            w = rng.standard_normal(shape, dtype=np.float32)
            w *= value
        elif kind == "uniform":
            w = rng.random(shape, dtype=np.float32)
            w *= 2 * value
            w -= value
        else:
            w = np.full(shape, value, dtype=np.float32)
        if args.verbose:
            print(f"{t.name}: {kind} {value:.6g}")
        model.graph.initializer[i].CopyFrom(numpy_helper.from_array(w.astype(dtype, copy=False),
                                                                    t.name))
    if external:
        onnx.save(model, args.output, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(args.output) + ".data", size_threshold=1024)
    else:
        onnx.save(model, args.output)


if __name__ == "__main__":
    sys.exit(main())
