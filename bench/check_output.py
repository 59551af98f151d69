#!/usr/bin/python3
"""Checks a contender's output for the benchmark runner (a separate process, so that loading
models never shows in the runner's memory or in the children's measured peak RSS).

Usage:  .venv/bin/python bench/check_output.py MODEL [--no-data] [--like OTHER]

  MODEL          passes onnx.checker.check_model(path), loads with onnx (with its external
                 data, unless --no-data), and every tensor's data has dims x element-size bytes
                 (with --no-data: every external tensor's file exists and is long enough).
  --like OTHER   MODEL and OTHER, both re-initialized from the same input by different tools,
                 have the same initializers and, tensor by tensor, the same distribution: a
                 constant tensor (norm scale, bias) holds the same value in both; a tensor of
                 n >= 1024 values has means within 6 standard errors, standard deviations within
                 6/sqrt(n) of each other (relative; the standard error of the difference of two
                 sample standard deviations of normal data is about 1/sqrt(n)), and the same
                 shape: both bounded by 1.8 standard deviations (uniform: sqrt(3)) or both not.

Exit 0 when everything holds, 1 with one line per problem otherwise, 77 without onnx/numpy.
"""

import argparse
import math
import os
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)


def check_model(path, load_data):
    problems = []
    onnx.checker.check_model(path)
    model = onnx.load(path, load_external_data=load_data)
    folder = os.path.dirname(os.path.abspath(path))
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL and not load_data:
            info = {e.key: e.value for e in t.external_data}
            data = os.path.join(folder, info.get("location", ""))
            end = int(info.get("offset", 0)) + int(info.get("length", 0))
            if not os.path.isfile(data) or os.path.getsize(data) < end:
                problems.append(f"{t.name}: external data {info} missing or too short")
            continue
        if t.data_type in FLOATS:
            n = numpy_helper.to_array(t).size
            if n != math.prod(t.dims):
                problems.append(f"{t.name}: {n} values for dims {list(t.dims)}")
    return model, problems


def compare(model, other):
    problems = []
    a_inits = {t.name: t for t in model.graph.initializer}
    b_inits = {t.name: t for t in other.graph.initializer}
    if set(a_inits) != set(b_inits):
        problems.append(f"different initializers: {sorted(set(a_inits) ^ set(b_inits))[:10]}")
    for name, ta in a_inits.items():
        tb = b_inits.get(name)
        if tb is None or ta.data_type not in FLOATS:
            continue
        a = numpy_helper.to_array(ta).ravel()
        b = numpy_helper.to_array(tb).ravel()
        if a.shape != b.shape or ta.data_type != tb.data_type:
            problems.append(f"{name}: type or size differs")
            continue
        a_const, b_const = a.min() == a.max(), b.min() == b.max()
        if a_const or b_const:
            if not (a_const and b_const and a[0] == b[0]):
                problems.append(f"{name}: constant in one only, or different constants")
            continue
        n = a.size
        if n < 1024:
            continue
        ma, mb = a.mean(dtype=np.float64), b.mean(dtype=np.float64)
        sa, sb = a.std(dtype=np.float64), b.std(dtype=np.float64)
        if abs(ma - mb) > 6 * math.sqrt((sa * sa + sb * sb) / n):
            problems.append(f"{name}: means {ma:.4g} and {mb:.4g} differ")
        if abs(sa / sb - 1) > 6 / math.sqrt(n):
            problems.append(f"{name}: standard deviations {sa:.5g} and {sb:.5g} differ")
        a_bounded = np.abs(a).max() <= 1.8 * sa
        b_bounded = np.abs(b).max() <= 1.8 * sb
        if a_bounded != b_bounded:
            problems.append(f"{name}: one is bounded (uniform), the other not")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--no-data", action="store_true")
    ap.add_argument("--like")
    args = ap.parse_args()
    try:
        model, problems = check_model(args.model, not args.no_data)
        if args.like:
            other, other_problems = check_model(args.like, True)
            problems += [f"{args.like}: {p}" for p in other_problems]
            problems += compare(model, other)
    except Exception as e:  # the checker's and loader's errors, reported as one line
        problems = [f"{type(e).__name__}: {e}"]
    for p in problems:
        print(f"{args.model}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
