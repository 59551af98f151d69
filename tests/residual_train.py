#!/usr/bin/python3
"""Does reinit's start train? A 32-block residual MLP without normalization, in PyTorch.

models/residual_mlp.onnx (stem, 32 blocks x = x + fc2(relu(fc1(x))), head; Gemm transB=1, names
of a torch state_dict) is re-initialized by reinit twice:

  auto:  `--scheme auto`, which must see the residual stream and scale its branches (Fixup);
  none:  `--scheme auto --residual none`, layer by layer only (He before ReLU, Xavier else),
         which lets the 32 branches add up (the stream's std grows ~2x per block).

Each result is loaded into an nn.Module with the same state_dict keys (load_state_dict strict;
a Gemm transB=1 weight [out, in] is nn.Linear's layout) -- checked first against a forward pass
computed with numpy from the ONNX graph itself on 8 samples -- and trained on sklearn's digits
(all 1797 samples, X/16 as float32, 10 classes): cross-entropy, plain SGD with momentum 0.9,
lr 0.01, 300 steps of mini-batches of 64 (a fixed random order, reshuffled each epoch),
torch.manual_seed(0), 2 threads. Then:

  auto: the loss on the whole set is finite and the train accuracy >= 0.9;
  none: the loss is NaN/inf or the accuracy stays < 0.5.

Usage: residual_train.py REINIT_BINARY SOURCE_DIR. Exits 77 (skipped) without python3-torch,
python3-sklearn (Debian's, seen through the venv) or onnx.
"""

import math
import os
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
    import torch
    from torch import nn
    from sklearn.datasets import load_digits
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

STEPS = 300
BATCH = 64
LR = 0.01
MOMENTUM = 0.9
RUNS = [
    ("auto", ["--scheme", "auto"]),
    ("none", ["--scheme", "auto", "--residual", "none"]),
]


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class ResidualMLP(nn.Module):
    def __init__(self, d_in, d, n_blocks, n_out):
        super().__init__()
        self.stem = nn.Linear(d_in, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(n_blocks))
        self.head = nn.Linear(d, n_out)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def onnx_forward(model, x):
    """The graph run with numpy in float64: Gemm (alpha, beta, transA/B), Relu, Add."""
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for n in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        i = [env[name] for name in n.input]
        if n.op_type == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2:
                y = y + a.get("beta", 1.0) * i[2]
        elif n.op_type == "Relu":
            y = np.maximum(i[0], 0)
        elif n.op_type == "Add":
            y = i[0] + i[1]
        else:
            raise RuntimeError(f"onnx_forward: unexpected op {n.op_type} ({n.name})")
        env[n.output[0]] = y
    return env[model.graph.output[0].name]


def module_from(model):
    state = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
             for t in model.graph.initializer}
    n_blocks = sum(1 for k in state if k.startswith("blocks.") and k.endswith(".fc1.weight"))
    d, d_in = state["stem.weight"].shape
    net = ResidualMLP(d_in, d, n_blocks, state["head.weight"].shape[0])
    net.load_state_dict(state, strict=True)
    return net


def train(net, X, y):
    """Returns (loss, accuracy) on the whole set after STEPS SGD steps."""
    torch.manual_seed(0)
    order = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    perm, at = torch.randperm(len(X), generator=order), 0
    for _ in range(STEPS):
        if at + BATCH > len(X):
            perm, at = torch.randperm(len(X), generator=order), 0
        idx = perm[at:at + BATCH]
        at += BATCH
        opt.zero_grad()
        loss = loss_fn(net(X[idx]), y[idx])
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(X)
        return loss_fn(out, y).item(), (out.argmax(1) == y).float().mean().item()


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    reinit, source = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    torch.set_num_threads(2)
    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    failures = []
    with tempfile.TemporaryDirectory(prefix="reinit-residual-train-") as tmp:
        for name, args in RUNS:
            out = os.path.join(tmp, name + ".onnx")
            cmd = [reinit, os.path.join(source, "models", "residual_mlp.onnx"), *args,
                   "-o", out, "-q"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                failures.append(f"{name}: {' '.join(cmd[1:])} exited {r.returncode}: "
                                f"{r.stderr.strip()[-1000:]}")
                continue
            model = onnx.load(out)
            net = module_from(model)

            # The weights reach the module as the graph uses them.
            x8 = digits.data[:8] / 16.0
            ref = onnx_forward(model, x8)
            with torch.no_grad():
                got = net(torch.tensor(x8, dtype=torch.float32)).double().numpy()
            scale = float(np.max(np.abs(ref))) if np.all(np.isfinite(ref)) else math.inf
            if not np.allclose(got, ref, rtol=1e-4, atol=1e-4 * scale):
                failures.append(f"{name}: the torch module's output on 8 samples differs from "
                                f"the ONNX graph's (max |diff| {np.max(np.abs(got - ref)):.3g}, "
                                f"max |output| {scale:.3g}): the weights were not loaded as the "
                                f"graph uses them")
                continue

            start = time.time()
            loss, acc = train(net, X, y)
            finite = math.isfinite(loss)
            print(f"{name:5s} ({' '.join(args)}): after {STEPS} steps loss {loss:.4g}, "
                  f"train accuracy {acc:.4f} ({time.time() - start:.0f} s; ONNX output std on "
                  f"8 samples {np.std(ref):.3g})")
            if name == "auto" and not (finite and acc >= 0.9):
                failures.append(f"auto: expected a finite loss and train accuracy >= 0.9, got "
                                f"loss {loss:.4g}, accuracy {acc:.4f}")
            if name == "none" and finite and acc >= 0.5:
                failures.append(f"none: expected the per-layer start to fail (loss NaN/inf or "
                                f"accuracy < 0.5), got loss {loss:.4g}, accuracy {acc:.4f}")
    for f in failures:
        print("FAIL " + f)
    print("ok" if not failures else f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
