"""IR 9-11 weight types end to end: QDQ weights re-drawn and re-quantized, plain FLOAT8 drawn.

  qdq_types_test.py REINIT

Small models built here with onnx.helper, at opset 21 (IR 10) and opset 23 (IR 11): MatMul,
Gemm and Conv reading their weight through DequantizeLinear (and a Cast to FLOAT after a
FLOAT16 or BFLOAT16 scale, whose type DequantizeLinear's output takes) in INT4 blocked (block_size 32 and
16, along either axis) and per axis, UINT4 with zero points, INT8 blocked, FLOAT8 E4M3FN and
E5M2 per tensor, FLOAT8 E4M3FNUZ and E5M2FNUZ per axis, scales in FLOAT, FLOAT16 and BFLOAT16;
a plain FLOAT8 weight read through a Cast; and, opset 23 only, FLOAT4E2M1 blocked. Each is
re-initialized by `reinit M --scheme he-normal -o out.onnx`; then:
- ONNX Runtime runs the output, with its graph optimizations (which fuse DequantizeLinear into
  its own kernels) and without them, where it must agree with onnx's reference implementation
  (onnx.reference) on the whole model. ORT 1.32's CPU provider has no DequantizeLinear of
  FLOAT4E2M1 (nor a Cast from it) and none with a BFLOAT16 scale: those models are run by the
  reference only, and ORT's refusal is checked to be NOT_IMPLEMENTED.
- The codes are re-drawn (most differ from the input's) and span their range: in every slice
  (the elements one scale applies to) an integer code reaches qmin or qmax, a FLOAT8 or FLOAT4
  one the type's largest magnitude.
- The weight dequantized by the reference (DequantizeLinear, or the Cast) has mean 0 and the
  std `reinit inspect --json` plans, within 5 standard errors of a sample std (sigma/sqrt(2n))
  plus what the quantization adds (a variance of step^2/12 an element, step the scale, or for
  FLOAT8 and FLOAT4 the scale times the code's spacing).
- Zero points are byte-identical; every tensor keeps its name, type and dims; the plan shows
  the quantization (dataType, quantScale, quantZeroPoint, quantAxis, quantBlockSize).
Exit 77 (skipped) without numpy, onnx >= 1.18, ml_dtypes or onnxruntime.
"""

import json
import os
import subprocess
import sys
import tempfile

try:
    import ml_dtypes
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto as T, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    T.FLOAT4E2M1  # onnx 1.18
except (ImportError, AttributeError) as e:
    print(f"skipped: {e}")
    sys.exit(77)

REINIT = os.path.abspath(sys.argv[1])
FAILURES = []

INTEGER_RANGE = {T.INT8: (-128, 127), T.UINT8: (0, 255), T.INT4: (-8, 7), T.UINT4: (0, 15)}
MINIFLOAT = {  # type: (mantissa bits, smallest normal exponent, largest finite)
    T.FLOAT8E4M3FN: (3, -6, 448.0),
    T.FLOAT8E4M3FNUZ: (3, -7, 240.0),
    T.FLOAT8E5M2: (2, -14, 57344.0),
    T.FLOAT8E5M2FNUZ: (2, -15, 57344.0),
    T.FLOAT4E2M1: (1, 0, 6.0),
}


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)
    return cond


def np_type(t):
    return helper.tensor_dtype_to_np_dtype(t)


class Case:
    """One weight layer: `op` (MatMul, Gemm with transB, Conv) reading weight [shape] of `qtype`
    through DequantizeLinear with `axis`/`block_size` (axis None: per tensor), or through a Cast
    when `plain`."""

    def __init__(self, name, op, qtype, shape, axis=None, block_size=0, scale_type=T.FLOAT,
                 zero_point=True, plain=False, opsets=(21, 23), ort=True):
        self.name, self.op, self.qtype, self.shape = name, op, qtype, list(shape)
        self.axis, self.block_size, self.scale_type = axis, block_size, scale_type
        self.zero_point, self.plain, self.opsets = zero_point and not plain, plain, opsets
        self.ort = ort  # False: ORT 1.32's CPU provider has no kernel for it

    def scale_shape(self):
        if self.axis is None:
            return []
        if not self.block_size:
            return [self.shape[self.axis]]
        s = list(self.shape)
        s[self.axis] = -(-s[self.axis] // self.block_size)
        return s


CASES = [
    Case("int4 blocked 32 along K (MatMul)", "MatMul", T.INT4, [256, 128], axis=0, block_size=32),
    Case("int4 blocked 16 along K (Gemm transB)", "Gemm", T.INT4, [128, 256], axis=1,
         block_size=16, scale_type=T.FLOAT16),
    Case("int4 per axis (MatMul)", "MatMul", T.INT4, [256, 128], axis=1),
    Case("uint4 per axis with zero points (Conv)", "Conv", T.UINT4, [64, 32, 3, 3], axis=0),
    Case("uint4 per tensor, float16 scale (Gemm)", "Gemm", T.UINT4, [128, 256],
         scale_type=T.FLOAT16),
    Case("uint4 per tensor, bfloat16 scale (Gemm)", "Gemm", T.UINT4, [128, 256],
         scale_type=T.BFLOAT16, ort=False),
    Case("int8 blocked 64 (MatMul)", "MatMul", T.INT8, [256, 128], axis=0, block_size=64),
    Case("float8 e4m3fn per tensor (Gemm)", "Gemm", T.FLOAT8E4M3FN, [128, 256]),
    Case("float8 e5m2 per tensor, no zero point (MatMul)", "MatMul", T.FLOAT8E5M2, [256, 128],
         scale_type=T.FLOAT16, zero_point=False),
    Case("float8 e4m3fnuz per axis (Conv)", "Conv", T.FLOAT8E4M3FNUZ, [64, 32, 3, 3], axis=0),
    Case("float8 e5m2fnuz blocked (MatMul)", "MatMul", T.FLOAT8E5M2FNUZ, [256, 128], axis=0,
         block_size=32),
    Case("plain float8 e4m3fn through Cast (MatMul)", "MatMul", T.FLOAT8E4M3FN, [256, 128],
         plain=True),
    Case("plain float8 e5m2 through Cast (Gemm)", "Gemm", T.FLOAT8E5M2, [128, 256], plain=True),
    Case("float4 e2m1 blocked 32 (MatMul)", "MatMul", T.FLOAT4E2M1, [256, 128], axis=0,
         block_size=32, zero_point=False, opsets=(23,), ort=False),
]


def random_codes(rng, qtype, shape):
    if qtype in INTEGER_RANGE:
        lo, hi = INTEGER_RANGE[qtype]
        return rng.integers(lo, hi + 1, size=shape).astype(np_type(qtype))
    return (rng.standard_normal(shape) * 2).astype(np.float32).astype(np_type(qtype))


def zero_points(case, rng):
    shape = case.scale_shape()
    if case.qtype in INTEGER_RANGE:
        lo, hi = INTEGER_RANGE[case.qtype]
        mid = (lo + hi + 1) // 2
        return rng.integers(mid - 1, mid + 2, size=shape).astype(np_type(case.qtype))
    return np.zeros(shape, np_type(case.qtype))


def build(case, opset):
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(random_codes(rng, case.qtype, case.shape), "wq")]
    if case.plain:
        nodes = [helper.make_node("Cast", ["wq"], ["w"], to=T.FLOAT)]
    else:
        scale = np.full(case.scale_shape(), 0.01, np.float32).astype(np_type(case.scale_type))
        inits.append(numpy_helper.from_array(scale, "scale"))
        inputs = ["wq", "scale"]
        if case.zero_point:
            inits.append(numpy_helper.from_array(zero_points(case, rng), "zp"))
            inputs.append("zp")
        attrs = {}
        if case.axis is not None:
            attrs["axis"] = case.axis
        if case.block_size:
            attrs["block_size"] = case.block_size
        # A FLOAT16 or BFLOAT16 scale makes the output that type: a Cast makes it FLOAT.
        narrow = case.scale_type != T.FLOAT
        nodes = [helper.make_node("DequantizeLinear", inputs, ["w16" if narrow else "w"], **attrs)]
        if narrow:
            nodes.append(helper.make_node("Cast", ["w16"], ["w"], to=T.FLOAT))
    if case.op == "MatMul":
        x_shape, y_shape = [4, case.shape[0]], [4, case.shape[1]]
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["h"], name="layer"))
    elif case.op == "Gemm":
        x_shape, y_shape = [4, case.shape[1]], [4, case.shape[0]]
        nodes.append(helper.make_node("Gemm", ["x", "w"], ["h"], transB=1, name="layer"))
    else:
        x_shape, y_shape = [1, case.shape[1], 8, 8], [1, case.shape[0], 8, 8]
        nodes.append(helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1], name="layer"))
    nodes.append(helper.make_node("Relu", ["h"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", T.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=10 if opset == 21 else 11)
    onnx.checker.check_model(model)
    return model, x_shape


def reinit(*args):
    r = subprocess.run([REINIT, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def dequantize(model):
    """The weight as the model reads it: the DequantizeLinear (or Cast) node alone, run by onnx's
    reference implementation."""
    node = model.graph.node[0]
    inits = {t.name: t for t in model.graph.initializer}
    graph = helper.make_graph([node], "dq", [],
                              [helper.make_tensor_value_info(node.output[0], T.FLOAT, None)],
                              [inits[n] for n in node.input])
    m = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    return ReferenceEvaluator(m).run(None, {})[0].astype(np.float64)


def slices(a, case):
    """a's elements grouped by the scale they use: a list of 1-D arrays."""
    if case.plain or case.axis is None:
        return [a.ravel()]
    moved = np.moveaxis(a, case.axis, -1)
    d = moved.shape[-1]
    rows = moved.reshape(-1, d)
    if not case.block_size:
        return list(rows.T)
    return [rows[r, b:b + case.block_size] for r in range(rows.shape[0])
            for b in range(0, d, case.block_size)]


def steps(case, codes, scale_per_element):
    """The spacing of the grid each element was rounded to, in the weight's units."""
    if case.qtype in INTEGER_RANGE:
        return scale_per_element
    mantissa, emin, _ = MINIFLOAT[case.qtype]
    v = np.abs(codes.astype(np.float64))
    e = np.maximum(np.floor(np.log2(np.where(v > 0, v, 1e-30))), emin)
    return scale_per_element * np.exp2(e - mantissa)


def broadcast_scale(model, case):
    if case.plain:
        return np.ones(case.shape)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    s = inits["scale"].astype(np.float64)
    if case.axis is None:
        return np.full(case.shape, float(s.reshape(-1)[0]))
    if not case.block_size:
        dims = [1] * len(case.shape)
        dims[case.axis] = s.size
        return np.broadcast_to(s.reshape(dims), case.shape)
    return np.repeat(s, case.block_size, axis=case.axis).take(range(case.shape[case.axis]),
                                                              axis=case.axis)


def run_ort(path, x, optimized):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not optimized:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def check_case(case, opset, tmp):
    what = f"{case.name}, opset {opset}"
    model, x_shape = build(case, opset)
    path = os.path.join(tmp, "m.onnx")
    out = os.path.join(tmp, "out.onnx")
    onnx.save(model, path)
    if os.path.exists(out):
        os.remove(out)

    code, stdout, stderr = reinit("inspect", path, "--scheme", "he-normal", "--json")
    if not check(code == 0, f"{what}: inspect exit {code}: {stderr}"):
        return
    layer = json.loads(stdout)["layers"][0]
    w = layer["weight"]
    check(layer["skipped"] == "", f"{what}: skipped: {layer['skipped']}")
    check(w["name"] == "wq" and w["dataType"] == T.DataType.Name(case.qtype),
          f"{what}: plan weight {w['name']} {w['dataType']}")
    if case.plain:
        check(w["quantScale"] == "", f"{what}: a plain weight has no quantization in the plan")
    else:
        check(w["quantScale"] == "scale" and w["quantZeroPoint"] == ("zp" if case.zero_point
                                                                     else ""),
              f"{what}: plan quantScale {w['quantScale']}, quantZeroPoint {w['quantZeroPoint']}")
        check(w["quantAxis"] == (-1 if case.axis is None else case.axis),
              f"{what}: plan quantAxis {w['quantAxis']}")
        check(int(w.get("quantBlockSize", 0)) == case.block_size,
              f"{what}: plan quantBlockSize {w.get('quantBlockSize')}")
    sigma = w["std"]

    code, _, stderr = reinit(path, "--scheme", "he-normal", "-o", out, "-q")
    if not check(code == 0 and os.path.exists(out), f"{what}: reinit exit {code}: {stderr}"):
        return
    new = onnx.load(out)

    # Names, types, dims; zero points byte for byte.
    before = {t.name: t for t in model.graph.initializer}
    after = {t.name: t for t in new.graph.initializer}
    check(sorted(before) == sorted(after), f"{what}: initializers {sorted(after)}")
    for name, t in before.items():
        if name in after:
            check(after[name].data_type == t.data_type and list(after[name].dims) == list(t.dims),
                  f"{what}: {name} changed type or dims")
    if case.zero_point:
        check(after["zp"].SerializeToString() == before["zp"].SerializeToString(),
              f"{what}: zero point changed")

    # Re-drawn codes that span their range.
    old_codes = numpy_helper.to_array(before["wq"])
    codes = numpy_helper.to_array(after["wq"])
    changed = np.mean(old_codes.view(np.uint8) != codes.view(np.uint8))
    check(changed > 0.5, f"{what}: only {changed:.0%} of the codes changed")
    if case.plain:
        pass  # no scale: the codes are the values
    elif case.qtype in INTEGER_RANGE:
        lo, hi = INTEGER_RANGE[case.qtype]
        ints = codes.astype(np.int32)
        bad = [k for k, s in enumerate(slices(ints, case)) if s.max() != hi and s.min() != lo]
        check(not bad, f"{what}: {len(bad)} slices reach neither {lo} nor {hi}")
    else:
        top = MINIFLOAT[case.qtype][2]
        mags = np.abs(codes.astype(np.float64))
        bad = [k for k, s in enumerate(slices(mags, case)) if s.max() != top]
        check(not bad, f"{what}: {len(bad)} slices do not reach {top}")

    # Dequantized: mean 0 and the planned std, within the sample's and the quantization's error.
    wf = dequantize(new)
    check(wf.shape == tuple(case.shape), f"{what}: dequantized shape {wf.shape}")
    n = wf.size
    step = steps(case, codes, broadcast_scale(new, case))
    quant_var = float(np.mean(step ** 2)) / 12
    tolerance = 5 * sigma / np.sqrt(2 * n) + (np.sqrt(sigma ** 2 + quant_var) - sigma)
    check(abs(wf.std() - sigma) <= tolerance,
          f"{what}: std {wf.std():.5g}, planned {sigma:.5g} (tolerance {tolerance:.3g})")
    check(abs(wf.mean()) <= 5 * sigma / np.sqrt(n) + np.sqrt(quant_var),
          f"{what}: mean {wf.mean():.3g}")

    # ONNX Runtime runs it; without its fusions it agrees with the reference.
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    expected = ReferenceEvaluator(new).run(None, {"x": x})[0]
    check(np.all(np.isfinite(expected)) and expected.std() > 0, f"{what}: reference output")
    if not case.ort:
        try:
            run_ort(out, x, optimized=False)
            check(False, f"{what}: ONNX Runtime ran it (update this test)")
        except Exception as e:  # ORT 1.32: NOT_IMPLEMENTED, no kernel for the types
            check("NOT_IMPLEMENTED" in str(e), f"{what}: ORT refused for another reason: {e}")
        return
    try:
        exact = run_ort(out, x, optimized=False)
        fused = run_ort(out, x, optimized=True)
    except Exception as e:
        check(False, f"{what}: ONNX Runtime: {e}")
        return
    scale = float(np.abs(expected).max())
    check(np.allclose(exact, expected, rtol=1e-5, atol=1e-5 * scale),
          f"{what}: ORT and the reference differ by {np.abs(exact - expected).max():.3g}")
    # ORT's fused kernels (MatMulNBits) may round the activations: a loose check.
    check(np.allclose(fused, expected, rtol=0.05, atol=0.05 * scale),
          f"{what}: optimized ORT differs by {np.abs(fused - expected).max():.3g}")


def check_mostly_zero_warning(tmp):
    """A plain FLOAT4E2M1 weight (no scale: 0, ±0.5 ... ±6) drawn at He's std rounds mostly to 0:
    the run says so in a warning naming the tensor; a plain FLOAT8 E4M3FN one (smallest value
    2^-9) does not, and neither does a blocked FLOAT4 weight (its scale follows the draw)."""
    for case, warned in (
            (Case("plain float4", "MatMul", T.FLOAT4E2M1, [256, 128], plain=True), True),
            (Case("plain float8", "MatMul", T.FLOAT8E4M3FN, [256, 128], plain=True), False),
            (Case("float4 blocked", "MatMul", T.FLOAT4E2M1, [256, 128], axis=0, block_size=32),
             False)):
        path = os.path.join(tmp, "w.onnx")
        onnx.save(build(case, 23)[0], path)
        code, _, stderr = reinit(path, "--scheme", "he-normal", "--dry-run")
        said = "'wq' is " in stderr and "comes out mostly 0" in stderr
        check(code == 0 and said == warned,
              f"{case.name}: the mostly-0 warning {'missing' if warned else 'given'}: {stderr}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        runs = 0
        for case in CASES:
            for opset in case.opsets:
                check_case(case, opset, tmp)
                runs += 1
        check_mostly_zero_warning(tmp)
    print(f"{runs} models, {len(FAILURES)} failures")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
