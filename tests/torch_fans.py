"""Parity of `reinit inspect --fan-convention torch` with PyTorch's own fans.

For each module, builds the ONNX graph torch.onnx would write for it (same weight shape and
attributes, made with onnx.helper, no export), runs `reinit inspect MODEL --json
--fan-convention torch`, and compares fanIn/fanOut with
torch.nn.init._calculate_fan_in_and_fan_out(module.weight).

Usage: torch_fans.py REINIT_BINARY. Exits 77 (skipped) when torch or onnx is not installed.
"""

import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from torch import nn
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)


def conv_model(module, kind):
    """A one-node Conv/ConvTranspose model with the module's weight and attributes."""
    w = module.weight.detach().numpy()
    spatial = len(module.kernel_size)
    attrs = {
        "group": module.groups,
        "kernel_shape": list(module.kernel_size),
        "strides": list(module.stride),
        "pads": list(module.padding) * 2,
        "dilations": list(module.dilation),
    }
    x_shape = [1, module.in_channels] + [8] * spatial
    node = helper.make_node(kind, ["x", "w", "b"], ["y"], name="layer", **attrs)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(module.bias.detach().numpy(), "b"),
    ]
    return node, x_shape, inits


def linear_model(module, as_matmul):
    """Linear as Gemm(transB=1) with W [out, in], or as MatMul with W^T [in, out] + Add."""
    w = module.weight.detach().numpy()
    b = module.bias.detach().numpy()
    x_shape = [1, module.in_features]
    if as_matmul:
        nodes = [
            helper.make_node("MatMul", ["x", "wt"], ["h"], name="layer"),
            helper.make_node("Add", ["h", "b"], ["y"], name="bias"),
        ]
        inits = [numpy_helper.from_array(w.T.copy(), "wt"), numpy_helper.from_array(b, "b")]
    else:
        nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="layer", transB=1)]
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    return nodes, x_shape, inits


def write_model(path, nodes, x_shape, inits):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def reinit_fans(binary, path):
    out = subprocess.run(
        [binary, "inspect", path, "--json", "--fan-convention", "torch"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"reinit failed ({out.returncode}): {out.stderr}")
    layers = [l for l in json.loads(out.stdout)["layers"] if l["name"] == "layer"]
    if len(layers) != 1 or layers[0].get("skipped"):
        raise RuntimeError(f"expected one planned layer 'layer', got {out.stdout}")
    return layers[0]["fanIn"], layers[0]["fanOut"]


def main():
    binary = sys.argv[1]
    torch.manual_seed(0)
    cases = [
        ("Linear(32, 64) as Gemm", nn.Linear(32, 64), lambda m: linear_model(m, False)),
        ("Linear(32, 64) as MatMul", nn.Linear(32, 64), lambda m: linear_model(m, True)),
        ("Conv1d(4, 6, 5)", nn.Conv1d(4, 6, 5), lambda m: conv_model(m, "Conv")),
        ("Conv2d(8, 16, 3)", nn.Conv2d(8, 16, 3, padding=1), lambda m: conv_model(m, "Conv")),
        ("Conv2d(8, 16, 3, groups=4)", nn.Conv2d(8, 16, 3, groups=4),
         lambda m: conv_model(m, "Conv")),
        ("Conv2d(8, 8, 3, groups=8) depthwise", nn.Conv2d(8, 8, 3, groups=8),
         lambda m: conv_model(m, "Conv")),
        ("Conv2d(3, 6, (3, 5))", nn.Conv2d(3, 6, (3, 5)), lambda m: conv_model(m, "Conv")),
        ("Conv3d(2, 4, 3)", nn.Conv3d(2, 4, 3), lambda m: conv_model(m, "Conv")),
        ("ConvTranspose2d(8, 6, 3)", nn.ConvTranspose2d(8, 6, 3),
         lambda m: conv_model(m, "ConvTranspose")),
        ("ConvTranspose2d(8, 12, 4, stride=2, groups=2)",
         nn.ConvTranspose2d(8, 12, 4, stride=2, groups=2),
         lambda m: conv_model(m, "ConvTranspose")),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, module, build) in enumerate(cases):
            path = os.path.join(tmp, f"case{i}.onnx")
            built = build(module)
            nodes = built[0] if isinstance(built[0], list) else [built[0]]
            write_model(path, nodes, built[1], built[2])
            want = torch.nn.init._calculate_fan_in_and_fan_out(module.weight)
            try:
                got = reinit_fans(binary, path)
            except RuntimeError as e:
                print(f"FAIL {label}: {e}")
                failures += 1
                continue
            ok = got == (float(want[0]), float(want[1]))
            print(f"{'ok  ' if ok else 'FAIL'} {label}: torch {want}, reinit {got}")
            failures += 0 if ok else 1
    print(f"{len(cases) - failures}/{len(cases)} match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
