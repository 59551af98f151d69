"""ONNX Runtime as an oracle: the reference executor against ORT, and reinit's output in ORT.

ONNX Runtime is the onnxruntime package of the project's venv (.venv, made by .ci/setup-venv
from .ci/requirements.txt, where its version is pinned), run with the CPU execution provider,
one thread (intra- and inter-op, sequential execution) and graph optimizations disabled: the
graph runs as written. For every model of model_list() — the sample models
(models/*.onnx), the corpus (models/corpus/*.onnx.gz) and, when the folder exists,
models/thirdparty/*.onnx and *.onnx.gz:

  (a) the model runs in ORT and in reinit's reference executor (run_model, tests/run_model.cc)
      on the same random inputs, and every output agrees: np.allclose(executor, ort,
      rtol=1e-4, atol=1e-4 * max|ort|) for floats, equality for the rest. Where that fails,
      the model runs in ORT once more with all graph optimizations, and the executor still
      passes if it is within SPREAD_FACTOR times ORT's own float32 spread (the two ORT runs'
      largest difference; the line says so). A model whose weights were zeroed (some float
      constant of rank >= 2 with 16 values or more is all 0: the corpus and models/thirdparty/
      zero their weights) is first given random weights: `reinit --scheme he-normal --seed 1`,
      then the biases, normalization scales and shifts and running statistics that reinit's
      plan names (initializers or Constant node values) are redrawn with numpy (N(0, 0.1);
      scales and variances U(0.5, 1.5)) so that no bias add or normalization is an identity.
      Where reinit refuses the model, numpy draws the zero weights (N(0, 1/fan), fan = size /
      shape[0]) and the refusal is reported under (b). A Dropout with a training_mode input
      (the train exports) loses that input for (a): ORT would draw a random mask, the
      executor never does.
  (b) `reinit MODEL --scheme S --seed 1` for S in auto, he-normal, orthogonal, torch-default
      (and gpt2 where the model has a Softmax: the attention models) writes a model that loads
      and runs in ORT with every float output finite (zeros are fine, NaN and inf are not). A
      model reinit refuses is a failure with reinit's message. (For a zeroed model, (a)'s
      he-normal draw is this he-normal: the same command.)

Inputs: a symbolic dim is 2 on axis 0 (the sample models' batch 'N') and 8 elsewhere, the
same wherever the same dim_param appears; floats N(0, 1); integers read by a Gather (directly or
through Cast/Reshape/Unsqueeze/...) uniform over the rows of its table, other integers 0 or 1;
bools random. INPUTS gives the shapes or values these rules get wrong (audio lengths, image
sizes, a sample rate), by model.

tests/ort_known_gaps.tsv lists the checks that fail for a known reason (an op the executor does
not run); they print as "gap" and do not fail the test, but a listed check that passes does.

Each of the -j workers (default 2) has its own ORT process (serve(), a multiprocessing child:
the sessions of the big models take hundreds of MB each, and an ORT crash ends that process, not
the test; it is started again for the next run) and takes one model at a time: prepares it, runs
it in both, runs every scheme and its ORT run, and deletes its files before the next (the
corpus's ConvNeXt is 110 MB a copy once it has weights).

Usage: ort_test.py REINIT RUN_MODEL SOURCE_DIR [--only SUBSTRING]... [--keep DIR] [-j N].
Prints one line per check and "N passed, M failed"; exits 1 on any failure. Exits 77 (skipped)
when onnxruntime, onnx or numpy cannot be imported (run it with .venv/bin/python).
"""

import argparse
import concurrent.futures
import glob
import gzip
import json
import multiprocessing
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KNOWN_GAPS = os.path.join(HERE, "ort_known_gaps.tsv")
RTOL = 1e-4
# Where the executor is beyond allclose, it still passes when it is no farther from ORT than
# this many times ORT's own float32 spread: the largest difference between ORT's outputs with
# graph optimizations disabled and all (fusions sum in another order). Training-mode
# BatchNorm at batch 1 (the corpus's train exports) normalizes the last stages over the 2x2
# positions of one image and is that ill-conditioned (about 1e-4 of the output).
SPREAD_FACTOR = 2.0
SCHEMES = ("auto", "he-normal", "orthogonal", "torch-default")
ATTENTION_SCHEMES = ("gpt2",)  # also on models with a Softmax
SEED = 1
OTHER_SYMBOLIC_DIM = 8
PASS_THROUGH = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Transpose", "Identity",
                "Expand", "Slice", "Concat", "Tile"}

try:
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import numpy_helper
except ImportError as e:
    print(f"skipped: {e} (onnxruntime, onnx and numpy are needed: bash .ci/setup-venv, "
          f"then .venv/bin/python)")
    sys.exit(77)

OPT_LEVELS = {
    "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,  # the graph as written
    "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def np_dtype_or_float(data_type):
    """numpy's dtype for an ONNX tensor type, float32 where numpy has none."""
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(data_type)
    except (KeyError, ValueError):
        return np.float32


FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.BFLOAT16)

# Inputs the defaults (see make_inputs) would get wrong, by model label: {input: a shape (random
# values as for any input) or a numpy array (these values)}. Audio models need enough samples for
# their STFT and reflect padding, PaddleOCR's detector a side divisible by 32, silero its sample
# rate (16000 or 8000), the STFT test the frame step its output shape implies.
INPUTS = {
    "thirdparty/onnx_stft_window": {"frame_step": np.array(8, np.int64)},
    "thirdparty/onnx_lstm_peepholes": {"sequence_lens": np.array([1, 1], np.int32)},
    "thirdparty/oww_melspectrogram": {"input": [2, 1760]},
    "thirdparty/ppocr_mobile_v2_cls": {"x": [2, 3, 48, 192]},
    "thirdparty/ppocr_v4_det": {"x": [2, 3, 64, 64]},
    "thirdparty/ppocr_v4_rec": {"x": [2, 3, 48, 96]},
    "thirdparty/silero_vad_v4": {"input": [2, 512], "sr": np.array(16000, np.int64)},
    "thirdparty/silero_vad_v5": {"input": [2, 512], "state": [2, 2, 128],
                                 "sr": np.array(16000, np.int64)},
}


def read_known_gaps(path):
    """The rows of ort_known_gaps.tsv: label, check (a prefix of the check's name, up to a space),
    a text the failure's message must contain, and the reason."""
    gaps = []
    if not os.path.exists(path):
        return gaps
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 4:
                raise SystemExit(f"{path}:{lineno}: expected 4 tab-separated columns")
            gaps.append({"label": cols[0], "check": cols[1], "needle": cols[2],
                         "reason": cols[3], "line": lineno})
    return gaps


def ort_available():
    """None when ONNX Runtime can run the test's models here, else why not."""
    if "CPUExecutionProvider" not in onnxruntime.get_available_providers():
        return f"onnxruntime {onnxruntime.__version__} has no CPUExecutionProvider"
    return None


def model_list(source_dir):
    """(label, path) of every model the test runs: the sample models, the corpus, the tiny
    Hugging Face exports of models/hf/ and, when models/thirdparty/ exists, its *.onnx and
    *.onnx.gz."""
    models = os.path.join(source_dir, "models")
    out = [(f"sample/{os.path.basename(p)[:-len('.onnx')]}", p)
           for p in sorted(glob.glob(os.path.join(models, "*.onnx")))]
    out += [(f"corpus/{os.path.basename(p)[:-len('.onnx.gz')]}", p)
            for p in sorted(glob.glob(os.path.join(models, "corpus", "*.onnx.gz")))]
    out += [(f"hf/{os.path.basename(p)[:-len('.onnx.gz')]}", p)
            for p in sorted(glob.glob(os.path.join(models, "hf", "*", "*.onnx.gz")))]
    third = os.path.join(models, "thirdparty")
    if os.path.isdir(third):
        for p in sorted(glob.glob(os.path.join(third, "*.onnx")) +
                        glob.glob(os.path.join(third, "*.onnx.gz"))):
            base = os.path.basename(p)
            base = base[:-len(".onnx.gz")] if base.endswith(".onnx.gz") else base[:-len(".onnx")]
            out.append((f"thirdparty/{base}", p))
    return out


def read_bytes(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def file_name(name):
    return name.replace("/", "_")


def constant_tensors(graph):
    """(name, TensorProto) of every initializer and Constant node value of the graph and of the
    If/Loop/Scan bodies inside it; the protos are the model's own (set_tensor changes them)."""
    for t in graph.initializer:
        yield t.name, t
    for n in graph.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.name == "value":
                yield n.output[0], a.t
            if a.type == onnx.AttributeProto.GRAPH:
                yield from constant_tensors(a.g)
            for g in a.graphs:
                yield from constant_tensors(g)


def is_zero(t):
    if t.HasField("raw_data"):
        return not t.raw_data.strip(b"\0")
    return not np.any(numpy_helper.to_array(t))


def weights_zeroed(model):
    """True when some float weight is all zeros: a constant (initializer or Constant node value,
    in any body) of rank >= 2 with at least 16 values. The corpus zeroes every float
    initializer, models/thirdparty/ every float tensor of 16 values or more except fixed ones
    (DFT bases, filter banks), which a drawn weight would not touch. A model whose weights are
    ConstantOfShape outputs counts too."""
    shapes = {t.name: t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT64}
    if any(n.op_type == "ConstantOfShape" and n.input[0] in shapes and
           np.prod(shapes[n.input[0]].dims) >= 2 for n in model.graph.node):
        return True  # weights stripped (the backend test's light models): reinit makes them
    return any(t.data_type in FLOAT_TYPES and len(t.dims) >= 2 and np.prod(t.dims) >= 16
               and is_zero(t) for _, t in constant_tensors(model.graph))


def gather_rows(model, name):
    """The rows of the table a Gather reads with `name` as its indices (through PASS_THROUGH
    ops), or None."""
    inits = {t.name: t for t in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    frontier, seen = [name], set()
    while frontier:
        cur = frontier.pop()
        if cur in seen:
            continue
        seen.add(cur)
        for n in model.graph.node:
            if cur not in n.input:
                continue
            if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] == cur:
                table = n.input[0]
                if table in inits:
                    return int(inits[table].dims[0])
                if table in consts:
                    for a in consts[table].attribute:
                        if a.name == "value":
                            return int(a.t.dims[0])
            elif n.op_type in PASS_THROUGH and n.input[0] == cur:
                frontier.extend(n.output)
    return None


def make_inputs(model, rng, in_dir, overrides=None):
    """Writes IN_DIR/<input>.npy for every graph input that is not an initializer; {name: path}.
    A symbolic dim takes 2 on axis 0 and OTHER_SYMBOLIC_DIM elsewhere, the same value wherever
    the same dim_param appears; overrides ({input: shape list or numpy value}) come first."""
    overrides = overrides or {}
    inits = {t.name for t in model.graph.initializer}
    os.makedirs(in_dir, exist_ok=True)
    feeds, dims = {}, {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        et = tt.elem_type
        spec = overrides.get(inp.name)
        if isinstance(spec, np.ndarray):
            value = spec
        else:
            shape = list(spec) if spec is not None else []
            for d, size in zip(tt.shape.dim, shape):  # an override's sizes bind its dim_params
                if d.dim_param:
                    dims.setdefault(d.dim_param, size)
            if spec is None:
                for k, d in enumerate(tt.shape.dim):
                    if d.HasField("dim_value") and d.dim_value > 0:
                        shape.append(d.dim_value)
                        continue
                    size = 2 if k == 0 else OTHER_SYMBOLIC_DIM
                    if d.dim_param:
                        size = dims.setdefault(d.dim_param, size)
                    shape.append(size)
            if et in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                      onnx.TensorProto.FLOAT16):
                value = rng.standard_normal(shape).astype(onnx.helper.tensor_dtype_to_np_dtype(et))
            elif et in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
                rows = gather_rows(model, inp.name) or 2
                value = rng.integers(0, rows, shape).astype(onnx.helper.tensor_dtype_to_np_dtype(et))
            elif et == onnx.TensorProto.BOOL:
                value = rng.integers(0, 2, shape).astype(bool)
            else:
                raise ValueError(f"input '{inp.name}': element type "
                                 f"{onnx.TensorProto.DataType.Name(et)} is not supported by "
                                 f"the test (give it in INPUTS)")
        path = os.path.join(in_dir, file_name(inp.name) + ".npy")
        np.save(path, value)
        feeds[inp.name] = path
    return feeds


def run_command(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, (p.stderr.strip() or p.stdout.strip())


def last_error(text, limit=400):
    """The last line of text that names an error (or its last line), cut at `limit`."""
    lines = [l for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if "error" in l.lower()]
    line = (errors or lines or ["(no output)"])[-1].strip()
    return line if len(line) <= limit else line[:limit] + " ..."


def set_tensor(t, value):
    """Sets the TensorProto t to value, in t's data type (bfloat16 left as it is)."""
    if t.data_type == onnx.TensorProto.BFLOAT16:
        return  # numpy has no bfloat16; left as reinit drew it
    name = t.name
    t.CopyFrom(numpy_helper.from_array(
        np.asarray(value).astype(np_dtype_or_float(t.data_type)), name))


def randomize_planned_constants(model, plan, rng):
    """Biases, normalization scales/shifts and running statistics named by reinit's plan
    (initializers or Constant node values): N(0, 0.1), scales and variances U(0.5, 1.5)."""
    tensors = {}
    for name, t in constant_tensors(model.graph):
        tensors.setdefault(name, []).append(t)
    for layer in plan.get("layers", []):
        if layer.get("skipped"):
            continue
        planned = [layer.get("bias")] + list(layer.get("params", []))
        weight = layer.get("weight") or {}
        if weight.get("role") == "scale":
            planned.append(weight)
        for p in planned:
            if not p:
                continue
            for t in tensors.get(p.get("name"), []):
                if t.data_type not in FLOAT_TYPES:
                    continue
                shape = tuple(t.dims)
                if p.get("role") in ("scale", "running_var"):
                    set_tensor(t, rng.uniform(0.5, 1.5, shape))
                else:
                    set_tensor(t, rng.normal(0.0, 0.1, shape))


def numpy_weights(model, rng):
    """Where reinit refuses the model: every zero float constant of rank >= 2 N(0, 1/fan),
    fan = size / shape[0]."""
    for _, t in constant_tensors(model.graph):
        if t.data_type in FLOAT_TYPES and len(t.dims) >= 2 and is_zero(t):
            shape = tuple(t.dims)
            fan = max(1, int(np.prod(shape[1:])))
            set_tensor(t, rng.normal(0.0, fan ** -0.5, shape))


def inference_dropout(model):
    """Drops the training_mode input of every Dropout (so that it is the identity, as in the
    executor, which never draws a mask); the number of Dropouts that had one."""
    count = 0
    for n in model.graph.node:
        if n.op_type == "Dropout" and len(n.input) > 2 and n.input[2]:
            del n.input[2]
            count += 1
    return count


def run_ort(model, in_dir, out_dir, opt):
    """Runs MODEL in ONNX Runtime on IN_DIR/<input>.npy for every graph input that is not an
    initializer and writes OUT_DIR/<output>.npy for every graph output; the output names."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = OPT_LEVELS[opt]
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: they come back as the exception's message
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in session.get_inputs():
        path = os.path.join(in_dir, file_name(inp.name) + ".npy")
        if not os.path.exists(path):
            raise ValueError(f"no input file {path} for input '{inp.name}'")
        feeds[inp.name] = np.load(path)
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, feeds)
    os.makedirs(out_dir, exist_ok=True)
    for name, value in zip(names, values):
        # A sequence, a map or a string tensor would need pickle to be read back.
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"output '{name}' ({kind}) cannot be written as .npy")
        np.save(os.path.join(out_dir, file_name(name) + ".npy"), value)
    return names


def serve(conn):
    """The body of an ORT process: answers every job {model, in_dir, out_dir, opt} that comes on
    conn with {ok, outputs (the names) or error (ORT's message), seconds}; ends when conn
    closes."""
    onnxruntime.set_default_logger_severity(3)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        t0 = time.perf_counter()
        answer = {}
        try:
            answer["outputs"] = run_ort(job["model"], job["in_dir"], job["out_dir"], job["opt"])
            answer["ok"] = True
        except Exception as e:  # ORT's errors, as messages: the check reports them
            answer["ok"] = False
            answer["error"] = str(e).strip() or type(e).__name__
        answer["seconds"] = time.perf_counter() - t0
        conn.send(answer)


class OrtProcess:
    """One ORT process (serve): run() sends it a job and waits for its answer. Where the process
    dies (an ORT crash), the answer says so and a new process takes the next job."""

    # spawn, not fork: the test's threads are running when a process is started again.
    context = multiprocessing.get_context("spawn")

    def __init__(self):
        self.seconds = 0.0
        self.runs = 0
        self.start()

    def start(self):
        self.conn, child = self.context.Pipe()
        self.proc = self.context.Process(target=serve, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def run(self, model, in_dir, out_dir, opt="disabled"):
        try:
            self.conn.send({"model": model, "in_dir": in_dir, "out_dir": out_dir, "opt": opt})
            r = self.conn.recv()
        except (EOFError, OSError):
            self.conn.close()
            self.proc.join()
            code = self.proc.exitcode
            self.start()
            how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
            return {"ok": False, "error": f"ONNX Runtime's process died ({how})"}
        self.seconds += r["seconds"]
        self.runs += 1
        return r

    def close(self):
        self.conn.close()
        self.proc.join()


def compare_outputs(exec_dir, ort_dir, names, spread_dir):
    """(ok, message): the executor's outputs in exec_dir against ORT's in ort_dir."""
    msgs, ok = [], True
    for name in names:
        ref = np.load(os.path.join(ort_dir, file_name(name) + ".npy"))
        path = os.path.join(exec_dir, file_name(name) + ".npy")
        if not os.path.exists(path):
            ok = False
            msgs.append(f"{name}: the executor wrote no output")
            continue
        got = np.load(path)
        if got.shape != ref.shape:
            ok = False
            msgs.append(f"{name}: executor shape {list(got.shape)}, ORT's {list(ref.shape)}")
            continue
        if ref.dtype.kind != "f":
            good = bool(np.array_equal(got.astype(ref.dtype), ref))
            msgs.append(f"{name}: {ref.dtype} " + ("equal" if good else "DIFFERENT"))
            ok &= good
            continue
        if not np.all(np.isfinite(ref)):
            ok = False
            msgs.append(f"{name}: ORT's output is not finite")
            continue
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        err = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0
        good = bool(np.allclose(got, ref, rtol=RTOL, atol=RTOL * scale))
        msg = f"{name}: max|ORT| {scale:.3g}, max err {err:.2e}"
        spread_path = os.path.join(spread_dir, file_name(name) + ".npy") if spread_dir else ""
        if not good and spread_path and os.path.exists(spread_path):
            other = np.load(spread_path)
            spread = (float(np.abs(other.astype(np.float64) - ref).max())
                      if other.shape == ref.shape else float("inf"))
            if err <= SPREAD_FACTOR * spread:
                good = True
                msg += (f": beyond allclose but within {SPREAD_FACTOR:g}x ORT's own float32 "
                        f"spread {spread:.2e} (optimizations disabled vs all: ill-conditioned)")
            else:
                msg += f" EXCEEDS allclose and {SPREAD_FACTOR:g}x ORT's own spread {spread:.2e}"
        elif not good:
            msg += " EXCEEDS allclose"
        msgs.append(msg)
        ok &= good
    return ok, "; ".join(msgs)


def finite_outputs(out_dir, names):
    """(ok, message): every float output in out_dir is finite."""
    msgs, ok = [], True
    for name in names:
        out = np.load(os.path.join(out_dir, file_name(name) + ".npy"))
        if out.dtype.kind != "f":
            continue
        finite = np.isfinite(out)
        bad = int(out.size - np.count_nonzero(finite))
        scale = float(np.abs(out[finite]).max()) if out.size - bad else 0.0
        msgs.append(f"{name}: max|out| {scale:.3g}" +
                    (f", {bad} of {out.size} values NaN/inf" if bad else ""))
        ok &= not bad
    return ok, "; ".join(msgs) or "no float output"


def check_model(label, path, work, reinit, run_model, ort, keep):
    """Every check of one model; (notes, [(check, ok, message)])."""
    results, notes = [], []
    os.makedirs(work, exist_ok=True)
    data = read_bytes(path)
    original = os.path.join(work, "model.onnx")
    with open(original, "wb") as f:
        f.write(data)
    model = onnx.load_from_string(data)
    del data

    def run(cmd):  # messages name the model by its label, not by the temporary file
        code, msg = run_command(cmd)
        msg = re.sub(r" \(it runs [^)]*\)", "", msg)  # the executor's list of the ops it runs
        return code, msg.replace(original, label).replace(work + os.sep, "")

    rng = np.random.default_rng(SEED)

    # (a) the model, with random weights where they were zeroed, in the executor and in ORT.
    oracle_model = None
    reinitialized = {}
    if weights_zeroed(model):
        drawn = os.path.join(work, "drawn.onnx")
        code, msg = run([reinit, original, "--scheme", "he-normal", "--seed", str(SEED),
                         "-o", drawn])
        if code == 0:
            p = subprocess.run([reinit, "inspect", original, "--json"], capture_output=True,
                               text=True)
            plan = json.loads(p.stdout) if p.returncode == 0 else {}
            oracle_model = onnx.load(drawn)
            reinitialized["he-normal"] = drawn  # the same run as (b)'s he-normal
            randomize_planned_constants(oracle_model, plan, rng)
            notes.append("random weights: reinit he-normal, numpy biases and norms")
        else:
            oracle_model = onnx.load_from_string(model.SerializeToString())
            numpy_weights(oracle_model, rng)
            notes.append(f"random weights: numpy (reinit refused: {last_error(msg)})")
    dropouts = inference_dropout(oracle_model if oracle_model is not None else model)
    if dropouts:
        if oracle_model is None:
            oracle_model = model
        notes.append(f"{dropouts} training-mode Dropout(s) without training_mode for (a)")
    oracle = original
    if oracle_model is not None:
        oracle = os.path.join(work, "oracle.onnx")
        onnx.save(oracle_model, oracle)
        del oracle_model
    in_dir = os.path.join(work, "in")
    try:
        feeds = make_inputs(model, rng, in_dir, INPUTS.get(label))
    except ValueError as e:
        return notes, [("inputs", False, str(e))]
    exec_dir = os.path.join(work, "exec")
    os.makedirs(exec_dir, exist_ok=True)
    code, msg = run([run_model, oracle, exec_dir] + [f"{n}={p}" for n, p in feeds.items()])
    r = ort.run(oracle, in_dir, os.path.join(work, "ort"))
    original_runs = r["ok"]
    check = "a executor = ORT"
    if not r["ok"]:
        results.append((check, False, f"ORT: {r['error']}"))
    elif code != 0:
        results.append((check, False, f"executor: {last_error(msg)}"))
    else:
        ok, msg = compare_outputs(exec_dir, os.path.join(work, "ort"), r["outputs"], None)
        if not ok:  # beyond allclose: how far does ORT disagree with itself?
            spread = ort.run(oracle, in_dir, os.path.join(work, "ort.all"), opt="all")
            if spread["ok"]:
                ok, msg = compare_outputs(exec_dir, os.path.join(work, "ort"), r["outputs"],
                                          os.path.join(work, "ort.all"))
        results.append((check, ok, msg))
    if oracle != original and not keep:
        os.remove(oracle)

    # (b) reinit's output under each scheme in ORT.
    schemes = list(SCHEMES)
    if any(n.op_type == "Softmax" for n in model.graph.node):
        schemes += ATTENTION_SCHEMES
    for scheme in schemes:
        check = f"b --scheme {scheme} runs in ORT"
        out = reinitialized.get(scheme) or os.path.join(work, f"reinit.{scheme}.onnx")
        code, msg = 0, ""
        if scheme not in reinitialized:
            code, msg = run([reinit, original, "--scheme", scheme, "--seed", str(SEED),
                             "-o", out])
        if code != 0:
            results.append((check, False, f"reinit exit {code}: {last_error(msg)}"))
            continue
        out_dir = os.path.join(work, f"ort.{scheme}")
        r = ort.run(out, in_dir, out_dir)
        if not r["ok"]:
            results.append((check, False, f"ORT: {r['error']}" + (
                "" if original_runs else " (ORT fails on the original model too)")))
        else:
            results.append((check, *finite_outputs(out_dir, r["outputs"])))
        if not keep:
            os.remove(out)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return notes, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reinit")
    ap.add_argument("run_model")
    ap.add_argument("source_dir")
    ap.add_argument("--only", action="append", help="models whose label contains this")
    ap.add_argument("--keep", help="work in this folder and keep every file (default: a "
                    "temporary folder, each model's files deleted once it is checked)")
    ap.add_argument("-j", type=int, default=2, help="models checked at once (default 2)")
    args = ap.parse_args()
    reinit, run_model = os.path.abspath(args.reinit), os.path.abspath(args.run_model)

    why = ort_available()
    if why:
        print(f"skipped: {why}")
        return 77
    t_start = time.time()
    models = model_list(args.source_dir)
    if args.only:
        models = [m for m in models if any(s in m[0] for s in args.only)]
    tmp_obj = None
    if args.keep:
        tmp = os.path.abspath(args.keep)
        os.makedirs(tmp, exist_ok=True)
    else:
        tmp_obj = tempfile.TemporaryDirectory(prefix="ort_test.")
        tmp = tmp_obj.name
    workers = max(1, args.j)
    procs = [OrtProcess() for _ in range(workers)]
    free = queue.Queue()
    for s in procs:
        free.put(s)

    def job(label, path):
        proc = free.get()
        try:
            return check_model(label, path, os.path.join(tmp, label.replace("/", ".")),
                               reinit, run_model, proc, args.keep is not None)
        except Exception as e:  # a model the test itself cannot handle
            return [], [("test", False, f"{type(e).__name__}: {e}")]
        finally:
            free.put(proc)

    gaps = read_known_gaps(KNOWN_GAPS)
    used = set()
    passed = failed = known = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [(label, pool.submit(job, label, path)) for label, path in models]
        for label, fut in futures:
            notes, results = fut.result()
            for note in notes:
                print(f"     {label}: {note}")
            for check, ok, msg in results:
                gap = next((g for g in gaps if g["label"] == label and
                            (check == g["check"] or check.startswith(g["check"] + " "))), None)
                if gap:
                    used.add(gap["line"])
                if gap and not ok and gap["needle"] in msg:
                    print(f"gap  {label}: {check}: {msg} [ort_known_gaps.tsv:{gap['line']}: "
                          f"{gap['reason']}]", flush=True)
                    known += 1
                elif gap and ok:
                    print(f"FAIL {label}: {check}: passes, but ort_known_gaps.tsv:{gap['line']} "
                          f"lists it ({gap['reason']}): delete that line; {msg}", flush=True)
                    failed += 1
                else:
                    print(f"{'ok  ' if ok else 'FAIL'} {label}: {check}: {msg}", flush=True)
                    passed += ok
                    failed += not ok
    ran = {label for label, _ in models}
    for g in gaps:
        if g["label"] in ran and g["line"] not in used:
            print(f"FAIL ort_known_gaps.tsv:{g['line']}: {g['label']} has no check "
                  f"'{g['check']}'")
            failed += 1
    for s in procs:
        s.close()
    runs = sum(s.runs for s in procs)
    ort_s = sum(s.seconds for s in procs)
    print(f"\n{len(models)} models, {runs} runs in onnxruntime {onnxruntime.__version__} "
          f"({ort_s:.1f}s in ORT), "
          f"total {time.time() - t_start:.1f}s with {workers} workers")
    print(f"{passed} passed, {failed} failed" +
          (f", {known} known gaps (tests/ort_known_gaps.tsv)" if known else ""))
    if tmp_obj:
        tmp_obj.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
