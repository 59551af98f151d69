#!/usr/bin/python3
"""Normalizations written out, found by what they compute (issue 20, item 1), end to end.

Usage: decomposed_norm_test.py REINIT

Builds each spelling of LayerNorm and RMSNorm that exporters write (graph/normalization.h) with
onnx.helper, random γ and β, runs `reinit MODEL --scheme auto` and checks:
  - the plan: one norm layer "<op> (decomposed)" with γ as its weight and β as its bias, reset
    to 1 and 0;
  - ONNX Runtime on reinit's output: the subgraph now computes the plain normalization,
    (x − mean)/√(var + ε) or x/√(mean(x²) + ε), within 1e-4 (and the original, with its γ and
    β, did not);
  - a 4-block pre-norm transformer with TensorFlow's spelling (embedding Gather, blocks of
    [LN, MatMul, Gelu, MatMul, residual Add], final LN, head): its stream is pre_norm and takes
    the scaled rule, no branch's output projection and not the head is zeroed, and its logits
    in ONNX Runtime differ between two inputs and along the sequence;
  - a residual MLP whose blocks divide the stream by its L2 norm over the batch axis (a
    normalization reinit cannot identify): the stream is "unknown", the plan warns, and no layer
    is zeroed.
Skipped (77) without onnx, onnxruntime or numpy; prints "N passed, M failed".
"""

import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto as T, helper, numpy_helper
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

REINIT = sys.argv[1]
D = 16
EPS = 1e-5
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail else ""))


def const(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


class Graph:
    """Nodes and initializers, with unique names per prefix."""

    def __init__(self, seed=0, opset=17):
        self.nodes, self.inits = [], []
        self.rng = np.random.default_rng(seed)
        self.opset = opset

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def init(self, name, values, dtype=np.float32):
        self.inits.append(const(name, values, dtype))
        return name

    def reduce(self, op, x, output, axis=-1):
        """A reduction over one axis: the axes an attribute before opset 18, an input after."""
        if self.opset < 18 and op != "ReduceSum":
            return self.node(op, [x], output, axes=[axis])
        return self.node(op, [x, self.init(output + "_axes", [axis], np.int64)], output)

    def affine(self, p):
        """Trained-looking γ and β for norm p."""
        return (self.init(p + "_gamma", self.rng.uniform(0.5, 1.5, D)),
                self.init(p + "_beta", self.rng.uniform(-0.5, 0.5, D)))


# Each spelling: (graph, x, prefix) -> output; LayerNorm unless the name says RMS.
def torch_two_subs(g, x, p):
    """torch <= 1.9 (HF BertLayerNorm): x - mean computed twice, weight * x + bias."""
    gamma, beta = g.affine(p)
    m = g.reduce("ReduceMean", x, p + "_m")
    d1 = g.node("Sub", [x, m], p + "_d1")
    sq = g.node("Pow", [d1, g.init(p + "_two", 2.0)], p + "_sq")
    v = g.reduce("ReduceMean", sq, p + "_v")
    sd = g.node("Sqrt", [g.node("Add", [v, g.init(p + "_eps", EPS)], p + "_ve")], p + "_sd")
    d2 = g.node("Sub", [x, m], p + "_d2")
    n = g.node("Div", [d2, sd], p + "_n")
    return g.node("Add", [g.node("Mul", [gamma, n], p + "_scaled"), beta], p + "_y")


def cast_between_sub_and_pow(g, x, p):
    """Megatron's export: the deviation cast to double for the variance, and back."""
    gamma, beta = g.affine(p)
    m = g.reduce("ReduceMean", x, p + "_m")
    d = g.node("Sub", [x, m], p + "_d")
    dd = g.node("Cast", [d], p + "_dd", to=T.DOUBLE)
    sq = g.node("Pow", [dd, g.init(p + "_two", 2.0, np.float64)], p + "_sq")
    v = g.node("Cast", [g.reduce("ReduceMean", sq, p + "_v")], p + "_vf", to=T.FLOAT)
    sd = g.node("Sqrt", [g.node("Add", [v, g.init(p + "_eps", EPS)], p + "_ve")], p + "_sd")
    n = g.node("Div", [d, sd], p + "_n")
    return g.node("Add", [g.node("Mul", [n, gamma], p + "_scaled"), beta], p + "_y")


def tensorflow(g, x, p):
    """keras2onnx / tf2onnx: s = γ·rsqrt(var + ε); y = x·s + (β − mean·s)."""
    gamma, beta = g.affine(p)
    m = g.reduce("ReduceMean", x, p + "_m")
    d = g.node("Sub", [x, m], p + "_d")
    v = g.reduce("ReduceMean", g.node("Mul", [d, d], p + "_sq"), p + "_v")
    sd = g.node("Sqrt", [g.node("Add", [v, g.init(p + "_eps", EPS)], p + "_ve")], p + "_sd")
    s = g.node("Mul", [g.node("Reciprocal", [sd], p + "_r"), gamma], p + "_s")
    xs = g.node("Mul", [x, s], p + "_xs")
    b = g.node("Sub", [beta, g.node("Mul", [m, s], p + "_ms")], p + "_b")
    return g.node("Add", [xs, b], p + "_y")


def rms_t5(g, x, p):
    """T5 / LLaMA: in a wider float (here double) and back, Pow 2, Reciprocal, Mul x, Mul γ."""
    gamma = g.init(p + "_gamma", g.rng.uniform(0.5, 1.5, D))
    xw = g.node("Cast", [x], p + "_xw", to=T.DOUBLE)
    sq = g.node("Pow", [xw, g.init(p + "_two", 2.0, np.float64)], p + "_sq")
    ms = g.reduce("ReduceMean", sq, p + "_ms")
    rt = g.node("Sqrt", [g.node("Add", [ms, g.init(p + "_eps", EPS, np.float64)], p + "_me")],
                p + "_rt")
    n = g.node("Mul", [xw, g.node("Reciprocal", [rt], p + "_inv")], p + "_n")
    return g.node("Mul", [g.node("Cast", [n], p + "_nf", to=T.FLOAT), gamma], p + "_y")


def rms_div(g, x, p):
    """RMSNorm with Div, the scale first."""
    gamma = g.init(p + "_gamma", g.rng.uniform(0.5, 1.5, D))
    ms = g.reduce("ReduceMean", g.node("Mul", [x, x], p + "_sq"), p + "_ms")
    rt = g.node("Sqrt", [g.node("Add", [ms, g.init(p + "_eps", EPS)], p + "_me")], p + "_rt")
    return g.node("Mul", [gamma, g.node("Div", [x, rt], p + "_n")], p + "_y")


SPELLINGS = [
    ("torch_two_subs", torch_two_subs, "LayerNormalization", True),
    ("cast_between_sub_and_pow", cast_between_sub_and_pow, "LayerNormalization", True),
    ("tensorflow", tensorflow, "LayerNormalization", True),
    ("rms_t5", rms_t5, "RMSNormalization", False),
    ("rms_div", rms_div, "RMSNormalization", False),
]


def save(g, inputs, outputs, path):
    graph = helper.make_graph(g.nodes, "g", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
    model.ir_version = 8 if g.opset < 20 else 9
    onnx.checker.check_model(model)
    onnx.save(model, path)


def reinit(model, out, *options):
    p = subprocess.run([REINIT, model, "-o", out, "-q", "--scheme", "auto", *options],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"reinit {model} failed:\n{p.stderr}")
    return p.stderr


def plan(model):
    p = subprocess.run([REINIT, "inspect", model, "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"reinit inspect {model} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def run(model, feeds):
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def reference(x, centred):
    d = x - x.mean(-1, keepdims=True) if centred else x
    return d / np.sqrt((d * d).mean(-1, keepdims=True) + EPS)


def check_spelling(tmp, name, build, op, centred):
    g = Graph(seed=len(name))
    path, out = os.path.join(tmp, name + ".onnx"), os.path.join(tmp, name + ".reinit.onnx")
    y = build(g, "x", "ln")
    save(g, [helper.make_tensor_value_info("x", T.FLOAT, [2, 3, D])],
         [helper.make_tensor_value_info(y, T.FLOAT, [2, 3, D])], path)
    norms = [l for l in plan(path)["layers"] if l.get("kind") == "norm"]
    got = [(l.get("op"), l["weight"]["name"], l.get("bias", {}).get("name", ""),
            l["weight"].get("scheme"), l["weight"].get("value"), l.get("bias", {}).get("scheme"))
           for l in norms]
    want = [(op + " (decomposed)", "ln_gamma", "ln_beta" if centred else "", "constant", 1,
             "zero" if centred else None)]
    check(f"{name}: plan", got == want, f"{got} (want {want})")
    reinit(path, out)
    x = np.random.default_rng(1).normal(3, 5, (2, 3, D)).astype(np.float32)
    before, after = run(path, {"x": x}), run(out, {"x": x})
    err = float(np.abs(after - reference(x, centred)).max())
    was = float(np.abs(before - reference(x, centred)).max())
    check(f"{name}: ONNX Runtime computes the plain normalization after reinit",
          err < 1e-4 and was > 1e-2, f"max |y - ref| {err:.2e} (before: {was:.2e})")


def transformer(tmp, blocks=4, vocab=32):
    """ids -> Gather -> blocks of h + W2·Gelu(W1·LN(h) + b1) + b2 -> LN -> head."""
    g = Graph(seed=7, opset=20)  # Gelu; the reductions' axes as inputs
    rnd = g.rng
    h = g.node("Gather", [g.init("wte", rnd.normal(0, 0.02, (vocab, D))), "ids"], "h0")
    for i in range(blocks):
        n = tensorflow(g, h, f"ln{i}")
        a = g.node("Add", [g.node("MatMul", [n, g.init(f"w1_{i}", rnd.normal(0, 0.2, (D, 4 * D)))],
                                  f"fc1_{i}"), g.init(f"b1_{i}", np.zeros(4 * D))], f"a{i}")
        f = g.node("Gelu", [a], f"gelu{i}")
        c = g.node("Add", [g.node("MatMul", [f, g.init(f"w2_{i}", rnd.normal(0, 0.1, (4 * D, D)))],
                                  f"fc2_{i}"), g.init(f"b2_{i}", np.zeros(D))], f"c{i}")
        h = g.node("Add", [h, c], f"h{i + 1}")
    n = tensorflow(g, h, "lnf")
    g.node("MatMul", [n, g.init("head", rnd.normal(0, 0.2, (D, vocab)))], "logits")
    path = os.path.join(tmp, "transformer.onnx")
    save(g, [helper.make_tensor_value_info("ids", T.INT64, [1, 8])],
         [helper.make_tensor_value_info("logits", T.FLOAT, [1, 8, vocab])], path)
    return path


def check_transformer(tmp):
    path = transformer(tmp)
    out = os.path.join(tmp, "transformer.reinit.onnx")
    p = plan(path)
    streams = [(s["normalization"], s["rule"], s["branches"]) for s in p.get("streams", [])]
    check("transformer: one pre_norm stream of 4 branches, rule scaled",
          streams == [("pre_norm", "scaled", 4)], str(streams))
    norms = [l["name"] for l in p["layers"] if l.get("kind") == "norm"]
    check("transformer: 5 norms written in TensorFlow's spelling, planned", len(norms) == 5,
          str(norms))
    zeroed = [l["name"] for l in p["layers"] if l["weight"].get("scheme") == "zero"]
    check("transformer: no output projection or head zeroed", zeroed == [], str(zeroed))
    reinit(path, out)
    a = run(out, {"ids": np.array([[1, 2, 3, 4, 5, 6, 7, 8]], dtype=np.int64)})
    b = run(out, {"ids": np.array([[9, 3, 27, 30, 0, 12, 5, 2]], dtype=np.int64)})
    across_inputs = float(np.abs(a - b).max())
    along_sequence = float(np.abs(a - a[:, :1]).max())
    check("transformer: logits in ONNX Runtime are not constant",
          across_inputs > 1e-3 and along_sequence > 1e-3,
          f"max |a - b| {across_inputs:.3g}, along the sequence {along_sequence:.3g}")


def check_unknown(tmp, blocks=3):
    """x + W2·relu(W1·(x / ‖x‖ over axis 0)): a normalization over the batch axis."""
    g = Graph(seed=3)
    h = "x"
    for i in range(blocks):
        ss = g.reduce("ReduceSumSquare", h, f"ss{i}", 0)
        n = g.node("Div", [h, g.node("Sqrt", [ss], f"l2_{i}")], f"n{i}")
        a = g.node("Relu", [g.node("MatMul", [n, g.init(f"w1_{i}", g.rng.normal(0, 0.3, (D, D)))],
                                   f"fc1_{i}")], f"r{i}")
        c = g.node("MatMul", [a, g.init(f"w2_{i}", g.rng.normal(0, 0.3, (D, D)))], f"fc2_{i}")
        h = g.node("Add", [h, c], f"h{i + 1}")
    g.node("MatMul", [h, g.init("head", g.rng.normal(0, 0.3, (D, 4)))], "y")
    path = os.path.join(tmp, "unknown.onnx")
    save(g, [helper.make_tensor_value_info("x", T.FLOAT, [4, D])],
         [helper.make_tensor_value_info("y", T.FLOAT, [4, 4])], path)
    p = plan(path)
    streams = [(s["normalization"], s["rule"]) for s in p.get("streams", [])]
    check("unknown: the stream's normalization is unknown, no rule", streams == [("unknown", "none")],
          str(streams))
    zeroed = [l["name"] for l in p["layers"] if l["weight"].get("scheme") == "zero"]
    check("unknown: nothing zeroed", zeroed == [], str(zeroed))
    stderr = reinit(path, os.path.join(tmp, "unknown.reinit.onnx"))
    want = ("stream0: normalization could not be established (Div 'n0' scales the stream by a "
            "statistic of it that could not be identified: ReduceSumSquare 'ss0' is no reduction "
            "over the last axis alone); no depth rule applied")
    check("unknown: the warning names what could not be identified", want in stderr, stderr.strip())


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, build, op, centred in SPELLINGS:
            check_spelling(tmp, name, build, op, centred)
        check_transformer(tmp)
        check_unknown(tmp)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
