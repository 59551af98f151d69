"""Whole-model parity of the reference executor with PyTorch on the corpus architectures.

For each architecture of models/corpus/export.py (the same constructors and input shapes,
imported from it), builds the model with random weights under torch.manual_seed(k), exports it
with torch.onnx.export (opset 17) to a temporary folder, runs one random input through torch
and through run_model (the executor, tests/run_model.cc), and compares the outputs. Each model
in the corpus's two variants:

  eval   model.eval(), the default export (BatchNorm folded into the Conv before it where
         torch can, constants folded).
  train  model.train() with every dropout probability set to 0 (a deterministic forward),
         exported with training=TRAINING, do_constant_folding=False: the corpus's training
         graphs (weights under their torch names, Linear as MatMul(x, Transpose(W)), RNN weights
         through Slice/Concat), BatchNormalization in training mode (the batch's statistics;
         only the graph output is compared, not the running statistics). Models with BatchNorm
         run at batch 4 here (see TRAIN_BATCHNORM_BATCH).

Random weights: torch's and torchvision's own initialization, except that every float
parameter or buffer that it sets to a constant — biases, norm scales and shifts, BatchNorm's
running statistics, ConvNeXt's layer scale (1e-6), ViT's class token and zero-initialized head
— is redrawn (U(0.5, 1.5) for a positive constant, N(0, 0.1) for zero), so that no layer is
an identity or a zero and every op's output reaches the model's.

Tolerance: np.allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1, max|ref|)): float32 sums in
another order differ by a few ulps per op, which grow through depth to well under 1e-4 of the
output's scale. For scale, --f64 also gives torch's own float32 error: the largest
difference between its float32 output and the same model's in float64.

BatchNorm: eval-mode BatchNorm with torch's initial statistics (mean 0, variance 1) does not
normalize, and in several of these models the signal then explodes into ReLU6's ceiling or
vanishes, so that the output hardly depends on the input and the comparison would test only
the classifier's bias. Every BatchNorm's running statistics are therefore set from one random
batch in training mode, as training would set them; and the test fails (a test bug, not an
executor one) when torch's outputs for two random inputs differ by less than 5% of the output.

Usage: torch_executor.py RUN_MODEL [--only NAME]... [--batch N] [--f64]. Prints a table (max
abs error, the error relative to max|ref|, whether allclose holds) and exits 1 on any mismatch,
failure to run or output that hardly depends on the input. Exits 77 (skipped) when torch,
torchvision, onnx or numpy cannot be imported. Needs no network (weights=None). About 1.5 min
on 2 shared cores (--f64: about 1 min more).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import warnings

try:
    import numpy as np
    import onnx
    import torch
    from torch import nn
    import torchvision  # noqa: F401 (export.py needs it)
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT_PY = os.path.join(os.path.dirname(HERE), "models", "corpus", "export.py")
RTOL = 1e-4
# A comparison means something only if the output depends on the input: torch's outputs for
# two random inputs must differ by at least this fraction of max|output|.
MIN_DEPENDENCE = 0.05
CALIBRATION_BATCHES, CALIBRATION_BATCH = 1, 8
# The batch of a training export with BatchNorm (unless --batch): at batch 1 its last layers
# normalize over the 2x2 positions of one image, which leaves the output almost independent of
# the input (mobilenet_v3_small) and so ill-conditioned that torch's own float32 output is
# 4e-4 from float64 (regnet_y_400mf).
TRAIN_BATCHNORM_BATCH = 4


def load_corpus():
    spec = importlib.util.spec_from_file_location("corpus_export", EXPORT_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize_constants(model):
    """Redraws every float parameter or buffer whose values are all equal (see the docstring)."""
    with torch.no_grad():
        for _, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point() or t.numel() == 0:
                continue
            flat = t.reshape(-1)
            if not bool(torch.all(flat == flat[0])):
                continue
            if float(flat[0]) > 0:
                t.uniform_(0.5, 1.5)
            else:
                t.normal_(0.0, 0.1)


# The batch dim of each model's input where it is not the first ([seq, batch, ...] inputs).
BATCH_DIM = {"lstm_embedding": 1, "transformer_encoder": 1}


def with_batch(name, inputs, batch):
    """The inputs redrawn alike with `batch` in their batch dim (None: as export.py has them)."""
    if batch is None:
        return inputs
    out = []
    for t in inputs:
        shape = list(t.shape)
        shape[BATCH_DIM.get(name, 0)] = batch
        if t.is_floating_point():
            out.append(torch.randn(shape))
        else:
            out.append(torch.randint(0, int(t.max()) + 1, shape))
    return tuple(out)


def calibrate_batchnorm(model, name, make_inputs):
    """Sets every BatchNorm's running statistics to those of its input on random batches, as
    training would: without that, eval-mode BatchNorm (mean 0, variance 1) does not normalize,
    and in some of the models the signal explodes into ReLU6's ceiling or vanishes, leaving an
    output that hardly depends on the input."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    with torch.no_grad():
        for _ in range(CALIBRATION_BATCHES):
            model(*with_batch(name, make_inputs(), CALIBRATION_BATCH))
    model.eval()


def zero_dropout(model):
    """Dropout probability 0 everywhere, so that a training-mode forward is deterministic."""
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
        if isinstance(m, nn.MultiheadAttention):
            m.dropout = 0.0


def run_one(corpus, name, variant, seed, run_model, tmp, batch, f64):
    builder, make_inputs = corpus.MODELS[name]
    torch.manual_seed(seed)
    model = builder(variant)
    randomize_constants(model)
    kwargs = {}
    if variant == "eval":
        calibrate_batchnorm(model, name, make_inputs)
        model.eval()
    else:
        zero_dropout(model)
        model.train()
        if batch is None and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                 for m in model.modules()):
            batch = TRAIN_BATCHNORM_BATCH
        kwargs = dict(training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    inputs = with_batch(name, make_inputs(), batch)
    other = with_batch(name, make_inputs(), batch)
    with torch.no_grad():
        ref = model(*inputs).numpy()
        ref_other = model(*other).numpy()

    path = os.path.join(tmp, f"{name}.{variant}.onnx")
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, path, opset_version=corpus.OPSET, export_params=True,
                          keep_initializers_as_inputs=False, input_names=["input"],
                          output_names=["output"], **kwargs)
    export_s = time.time() - t0
    graph = onnx.load(path).graph
    ops = sorted({n.op_type for n in graph.node})

    in_path = os.path.join(tmp, f"{name}.{variant}.input.npy")
    np.save(in_path, inputs[0].numpy())
    out_dir = os.path.join(tmp, f"{name}.{variant}.out")
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    p = subprocess.run([run_model, path, out_dir, f"input={in_path}"], capture_output=True,
                       text=True)
    run_s = time.time() - t0
    scale = float(np.abs(ref).max())
    row = {"name": f"{name}.{variant}", "nodes": len(graph.node), "ops": ops, "export_s": export_s,
           "run_s": run_s, "shape": list(ref.shape), "scale": scale,
           "dependence": float(np.abs(ref - ref_other).max()) / max(scale, 1e-30)}
    if p.returncode != 0:
        row["error"] = (p.stderr or p.stdout).strip()
        return row
    out = np.load(os.path.join(out_dir, "output.npy"))
    if out.shape != ref.shape:
        row["error"] = f"output shape {list(out.shape)}, torch's {list(ref.shape)}"
        return row
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    row["max_abs"] = float(diff.max())
    if f64:  # torch's own float32 rounding, for scale: the same model and input in float64
        with torch.no_grad():
            exact = model.double()(*[t.double() if t.is_floating_point() else t for t in inputs])
        row["torch_f32"] = float(np.abs(ref.astype(np.float64) - exact.numpy()).max())
    row["rel"] = row["max_abs"] / max(row["scale"], np.finfo(np.float32).tiny)
    row["ok"] = bool(np.allclose(out, ref, rtol=RTOL, atol=RTOL * max(1.0, row["scale"])))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_model", help="the run_model binary (tests/run_model.cc)")
    ap.add_argument("--only", action="append", help="this model only (repeatable)")
    ap.add_argument("--batch", type=int, help="export and run with this batch size instead of "
                    "export.py's (1, or 8 x 1 for the [seq, batch] inputs)")
    ap.add_argument("--variant", action="append", choices=("eval", "train"),
                    help="this export only (default: both)")
    ap.add_argument("--f64", action="store_true", help="also give torch's own float32 error "
                    "(against float64; slow: about 1 min more)")
    args = ap.parse_args()
    corpus = load_corpus()
    names = args.only or list(corpus.MODELS)
    unknown = [n for n in names if n not in corpus.MODELS]
    if unknown:
        print(f"unknown model {unknown}; known: {', '.join(corpus.MODELS)}")
        return 2
    torch.set_num_threads(2)
    t_start = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, name in enumerate(corpus.MODELS):
            for variant in args.variant or ("eval", "train"):
                if name not in names:
                    continue
                r = run_one(corpus, name, variant, k, args.run_model, tmp, args.batch, args.f64)
                rows.append(r)
                print(f"{r['name']}: "
                      f"{'ERROR' if 'error' in r else 'ok' if r['ok'] else 'FAIL'} "
                      f"(export {r['export_s']:.1f}s, run_model {r['run_s']:.1f}s)",
                      file=sys.stderr, flush=True)

    print(f"torch {torch.__version__}, opset {corpus.OPSET}, "
          f"{f'batch {args.batch}' if args.batch else 'inputs as export.py'}; "
          f"pass: allclose(rtol={RTOL}, atol={RTOL} * max(1, max|ref|)); input dependence: "
          f"max|ref(x) - ref(x')| / max|ref(x)| for two random inputs (at least "
          f"{MIN_DEPENDENCE})\n")
    f64 = "| torch f32 vs f64 " if args.f64 else ""
    print("| model | nodes | output | max abs(ref) | input dependence | max abs error "
          f"| error / max abs(ref) {f64}| result |")
    print("|---|---:|---|---:|---:|---:|---:|" + ("---:|" if args.f64 else "") + "---|")
    failed = []
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        head = (f"| {r['name']} | {r['nodes']} | {shape} | {r['scale']:.3g} "
                f"| {r['dependence']:.2g} |")
        if "error" in r:
            failed.append(r)
            print(f"{head} | | {'| ' if args.f64 else ''}ERROR |")
            continue
        if r["dependence"] < MIN_DEPENDENCE:
            r["ok"] = False
            r["error"] = (f"the output hardly depends on the input (input dependence "
                          f"{r['dependence']:.2g}): the comparison would not test the model")
        if not r["ok"]:
            failed.append(r)
        f64 = f"{r['torch_f32']:.2e} | " if args.f64 else ""
        print(f"{head} {r['max_abs']:.2e} | {r['rel']:.2e} | {f64}"
              f"{'pass' if r['ok'] else 'FAIL'} |")
    ops = sorted({op for r in rows for op in r["ops"]})
    print(f"\nops covered ({len(ops)}): {' '.join(ops)}")
    print(f"total {time.time() - t_start:.0f}s")
    for r in failed:
        print(f"\n{r['name']}: " + r.get("error", f"max abs error {r['max_abs']:.3g} exceeds "
                                                 f"the tolerance; ops: {' '.join(r['ops'])}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
