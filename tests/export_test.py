"""reinit export end to end (onnx and numpy (the venv); no torch).

  export_test.py REINIT SOURCE_DIR [--quick]   (--quick, the sanitized build: --names torch on
  QUICK_ARCHITECTURES only)

- The safetensors files are read by a reader written here from the format's spec (header
  length, JSON, offsets contiguous from 0 in the order of the data, dtypes, the data starting
  8-byte aligned and each tensor aligned to its element size), and their values compared with
  the .onnx that `reinit M --scheme auto --seed 7 -o out.onnx` writes: the same bytes under
  --names onnx, and under --names torch after undoing the recorded transform, recomputed here
  (transpose, an RNN's directions and gate order).
- The .npz is read by numpy.load and holds the same arrays.
- The sidecar's entries agree with the plan `reinit inspect --json` prints for the same options.
- --names torch on every corpus model, train and eval, against its params.json: every torch
  tensor params.json maps (by name, by node scope, or through an Identity of a shared tensor) is
  produced with its shape, nothing else is produced (but the BatchNorm counters), and every
  unmapped entry is a folded BatchNorm, its shift, or a constant that is no torch tensor.
- --names keras on the tf2onnx model models/thirdparty/oww_embedding.onnx.gz and on a graph
  built here with tf2onnx's names: every kernel checked element by element against the ONNX
  weight.
- --names torch on a graph built here with a head tied to the token table: the second key is
  listed as tied, not written; a module's functional use of its own parameters is no tie.
- Errors: exit codes, messages, and no file left behind.
Exit 77 (skipped) without onnx or numpy.
"""

import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

REINIT = SOURCE = CORPUS = None  # set by main() (or by tests/export_torch_test.py)
FAILURES = []


def setup(reinit, source):
    global REINIT, SOURCE, CORPUS
    REINIT, SOURCE = reinit, source
    CORPUS = os.path.join(source, "models", "corpus")


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)
    return cond


def run(*args, expect=0):
    r = subprocess.run([REINIT, *args], capture_output=True, text=True)
    check(r.returncode == expect,
          f"reinit {' '.join(args)}: exit {r.returncode}, expected {expect}\n{r.stderr}")
    return r


# --- an independent safetensors reader, from the spec ---------------------------------------

DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "F64": ("<f8", 8), "BF16": ("<u2", 2),
          "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
          "U8": ("u1", 1), "BOOL": ("?", 1)}


def read_safetensors(path):
    """{name: array}, metadata; checks every rule of the format on the way."""
    data = open(path, "rb").read()
    check(len(data) >= 8, f"{path}: shorter than the header length")
    (n,) = struct.unpack("<Q", data[:8])
    check(8 + n <= len(data), f"{path}: header length {n} past the end")
    header_bytes = data[8:8 + n]
    check(header_bytes[:1] == b"{", f"{path}: the header must start with '{{'")
    check((8 + n) % 8 == 0, f"{path}: the data does not start 8-byte aligned ({8 + n})")
    text = header_bytes.decode("utf-8")
    check(text.rstrip(" ") == text.rstrip(), f"{path}: header padding other than spaces")
    header = json.loads(text)
    metadata = header.pop("__metadata__", {})
    check(all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()),
          f"{path}: __metadata__ must map strings to strings")
    body = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    at = 0
    for begin, end, name in spans:
        check(begin == at, f"{path}: '{name}' starts at {begin}, not {at} (a gap or overlap)")
        at = end
    check(at == len(body), f"{path}: the tensors cover {at} bytes of {len(body)}")
    out = {}
    for name, v in header.items():
        check(v["dtype"] in DTYPES, f"{path}: '{name}' has unknown dtype {v['dtype']}")
        descr, size = DTYPES[v["dtype"]]
        begin, end = v["data_offsets"]
        count = int(np.prod(v["shape"], dtype=np.int64))
        check(end - begin == count * size, f"{path}: '{name}' holds {end - begin} bytes for "
                                           f"{v['shape']} {v['dtype']}")
        check(begin % size == 0, f"{path}: '{name}' is not aligned to its element size")
        out[name] = np.frombuffer(body[begin:end], dtype=descr).reshape(v["shape"])
    return out, metadata, header


def onnx_arrays(path):
    m = onnx.load(path)
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def corpus_model(tmp, name):
    path = os.path.join(tmp, name + ".onnx")
    if not os.path.exists(path):
        with gzip.open(os.path.join(CORPUS, name + ".onnx.gz")) as f, open(path, "wb") as g:
            g.write(f.read())
    return path


# --- the recorded transforms, recomputed here -----------------------------------------------

# torch gate k is ONNX gate ORDER[op][k] (torch.onnx's reform_weights: LSTM i,f,g,o -> i,o,f,c;
# GRU r,z,n -> z,r,h).
ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}


def torch_view(entry, src, model):
    """The torch tensor an entry describes, computed from the ONNX tensor `src`."""
    t = entry["transform"]
    if t.startswith("none"):
        return src
    if t.startswith("transpose [1,0]"):
        return src.T
    if t.startswith("direction"):
        node = next(n for n in model.graph.node if n.name == entry["node"])
        gates = ORDER[node.op_type]
        direction = int(t.split()[1])
        part = src[direction]
        if part.ndim == 1:  # B: [W biases | R biases]
            half = 0 if "bias_ih" in entry["name"] else 1
            part = np.split(part, 2)[half]
        blocks = np.split(part, len(gates), axis=0)
        return np.concatenate([blocks[g] for g in gates], axis=0)
    raise AssertionError(f"unknown transform {t!r}")


# --- the tests ------------------------------------------------------------------------------

def test_values(tmp, name):
    """safetensors and npz against the .onnx the main command writes, onnx and torch names."""
    model = corpus_model(tmp, name)
    out = os.path.join(tmp, name + ".out.onnx")
    run(model, "--scheme", "auto", "--seed", "7", "-o", out)
    ref = onnx_arrays(out)
    ref_model = onnx.load(out)
    st = os.path.join(tmp, name + ".onnx-names.safetensors")
    run("export", model, "--scheme", "auto", "--seed", "7", "-o", st)
    got, meta, _ = read_safetensors(st)
    floats = {k for k, v in ref.items() if v.dtype.kind == "f"}
    check(set(got) == floats, f"{name}: --names onnx exports {sorted(set(got) ^ floats)[:5]}")
    for k in floats & set(got):
        check(got[k].shape == ref[k].shape and got[k].tobytes() == ref[k].tobytes(),
              f"{name}: '{k}' differs from the .onnx")
    check(meta.get("seed") == "7" and meta.get("scheme") == "auto" and meta.get("names") == "onnx"
          and meta.get("reinit_version"), f"{name}: metadata {meta}")
    check(meta.get("format") == "onnx" and meta.get("file_format") == "safetensors",
          f"{name}: ONNX names are tagged format onnx, file_format safetensors: {meta}")

    npz = os.path.join(tmp, name + ".torch.npz")
    st = os.path.join(tmp, name + ".torch.safetensors")
    run("export", model, "--scheme", "auto", "--seed", "7", "--names", "torch", "-o", npz)
    # -q, as every command takes it.
    run("export", model, "--scheme", "auto", "--seed", "7", "--names", "torch", "-o", st, "-q")
    got, meta, _ = read_safetensors(st)
    # Hugging Face transformers' loader accepts only format pt, tf, flax or mlx; a torch
    # state dict is pt.
    check(meta.get("format") == "pt" and meta.get("names") == "torch",
          f"{name}: --names torch must be tagged format pt: {meta}")
    with open(npz + ".json") as f:
        side = json.load(f)
    check(side.get("format") == "pt" and side.get("file_format") == "npz",
          f"{name}: the .npz sidecar says format {side.get('format')!r}, "
          f"file_format {side.get('file_format')!r}")
    with np.load(npz) as z:
        check(sorted(z.files) == sorted(got), f"{name}: npz and safetensors hold other names")
        for k in z.files:
            check(z[k].dtype == got[k].dtype and np.array_equal(z[k], got[k]),
                  f"{name}: npz '{k}' differs from safetensors")
    side = json.load(open(st + ".json"))
    for e in side["tensors"]:
        if e["source"] is None:
            check(e["name"].endswith(".num_batches_tracked") and got[e["name"]] == 0,
                  f"{name}: synthesized {e['name']}")
            continue
        want = torch_view(e, ref[e["source"]], ref_model)
        check(want.shape == got[e["name"]].shape and np.array_equal(want, got[e["name"]]),
              f"{name}: torch '{e['name']}' is not {e['transform']} of '{e['source']}'")
    return side


def test_sidecar_matches_plan(tmp, name, side):
    model = corpus_model(tmp, name)
    plan = json.loads(run("inspect", model, "--json", "--scheme", "auto", "--seed", "7").stdout)
    inits = {}
    for layer in plan["layers"]:
        for t in [layer.get("weight"), layer.get("bias")] + layer.get("params", []):
            if t:  # a shared tensor is initialized at its first layer
                inits.setdefault(t["name"], (layer, t))
    checked = 0
    for e in side["tensors"]:
        hit = inits.get(e.get("reads", e["source"])) or inits.get(e["source"])
        if not hit:
            check(e["layer"] == "" and e["scheme"] in ("unchanged (not in the plan)", "synthesized"),
                  f"{name}: '{e['name']}' not in the plan but says layer {e['layer']!r}")
            continue
        layer, t = hit
        checked += 1
        scheme = t.get("scheme", "") if not layer.get("skipped") else "keep"
        ok = (e["layer"] == layer["name"] and e["scheme"] == scheme
              and abs(e["std"] - t.get("std", 0)) < 1e-12 and abs(e["bound"] - t.get("bound", 0)) < 1e-12
              and abs(e["gain"] - t.get("gain", 0)) < 1e-12 and e["role"] == t.get("role", e["role"]))
        check(ok, f"{name}: sidecar {e} disagrees with the plan's {t} of {layer['name']}")
    check(checked > 0, f"{name}: no sidecar entry found in the plan")


# --quick (the sanitized build): --names torch on these architectures only, both variants (a
# conv net with BatchNorm, a dense/concat one, an LSTM, a GRU, attention); Release runs all.
QUICK_ARCHITECTURES = ("resnet18", "densenet121", "lstm_embedding", "bigru", "transformer_encoder")


def test_torch_names(tmp, quick=False):
    """--names torch on every corpus model against params.json."""
    rows = []
    for f in sorted(os.listdir(CORPUS)):
        if not f.endswith(".params.json"):
            continue
        name = f[:-len(".params.json")]
        if quick and name.split(".")[0] not in QUICK_ARCHITECTURES:
            continue
        params = json.load(open(os.path.join(CORPUS, f)))
        model = corpus_model(tmp, name)
        st = os.path.join(tmp, name + ".names.safetensors")
        run("export", model, "--names", "torch", "-o", st)
        side = json.load(open(st + ".json"))
        _, _, header = read_safetensors(st)
        got = {e["name"]: e for e in side["tensors"]}
        check(set(got) == set(header), f"{name}: sidecar and file list other tensors")
        torch_names = {p["torch"]: p for p in params["tensors"]}
        folded = [p for p in params["tensors"] if p["onnx"] is None
                  and "Identity" not in p["why_not"]]
        mapped = 0
        for p in params["tensors"]:
            shared = p["onnx"] is None and "Identity" in p["why_not"]
            if p["onnx"] is not None or shared:
                mapped += check(p["torch"] in got and got[p["torch"]]["shape"] == p["shape"],
                                f"{name}: '{p['torch']}' {p['shape']} ({p.get('how') or p['why_not']}) "
                                f"not produced as such: {got.get(p['torch'])}")
            else:
                check("BatchNorm folded" in p["why_not"] and p["torch"] not in got,
                      f"{name}: '{p['torch']}' ({p['why_not']}) produced or unexpected")
        for n in got:
            base = n[:-len(".num_batches_tracked")]
            check(n in torch_names or (n.endswith(".num_batches_tracked")
                                       and base + ".running_mean" in torch_names),
                  f"{name}: '{n}' is no torch tensor of the module")
        # Every unmapped entry is a real fold, or no torch tensor at all.
        onnx_of_torch = {p["onnx"] for p in params["tensors"] if p["onnx"]}
        kinds = {}
        for u in side["unmapped"]:
            kinds[u["kind"]] = kinds.get(u["kind"], 0) + 1
            check(u["kind"] in ("folded_batchnorm", "folded_shift", "no_rule"),
                  f"{name}: unmapped {u}")
            check(u["source"] is None or u["source"] not in onnx_of_torch,
                  f"{name}: unmapped '{u['source']}' is torch's {u}")
        check(kinds.get("folded_batchnorm", 0) * 4 == len(folded),
              f"{name}: {kinds.get('folded_batchnorm', 0)} folded BatchNorms listed, params.json "
              f"has {len(folded)} folded tensors")
        check(params["variant"] == "eval" or not kinds.get("folded_batchnorm"),
              f"{name}: a training export has no folded BatchNorm")
        rows.append((name, mapped, len(params["tensors"]), kinds))
    print(f"{'model':32} torch tensors mapped  unmapped")
    for name, mapped, total, kinds in rows:
        print(f"{name:32} {mapped:4} of {total:4}  {kinds}")


def test_as_is(tmp):
    """--as-is: the model's values as they are; a kept folded conv weight is not named."""
    model = corpus_model(tmp, "resnet18.eval")
    out = os.path.join(tmp, "resnet18.eval.out.onnx")
    st = os.path.join(tmp, "asis.safetensors")
    run("export", out, "--as-is", "-o", st)
    got, meta, _ = read_safetensors(st)
    ref = onnx_arrays(out)
    check(meta["as_is"] == "true" and all(np.array_equal(got[k], ref[k]) for k in got),
          "--as-is: values differ from the model's")
    run("export", out, "--as-is", "--names", "torch", "-o", st)
    side = json.load(open(st + ".json"))
    folded = [u for u in side["unmapped"] if u["kind"] == "folded_weight"]
    check(len(folded) == 20 and not any(e["name"].startswith("layer1.0.conv1") for e in side["tensors"]),
          f"--as-is --names torch: {len(folded)} kept folded conv weights listed, expected 20")
    del model


def test_errors(tmp):
    model = corpus_model(tmp, "resnet18.train")
    r = run("export", model, "-o", os.path.join(tmp, "e.safetensors"), "--names", "jax", expect=2)
    check("reinit: error: unknown --names 'jax'; expected onnx, torch or keras" in r.stderr, r.stderr)
    r = run("export", model, "-o", os.path.join(tmp, "e.bin"), expect=2)
    check("reinit: error: cannot tell the format of" in r.stderr and "e.bin" in r.stderr, r.stderr)
    r = run("export", model, "-o", os.path.join(tmp, "e.bin"), "--format", "tar", expect=2)
    check("unknown --format 'tar'" in r.stderr, r.stderr)
    r = run("export", model, expect=2)
    check("-o" in r.stderr, r.stderr)
    r = run("export", model, "-o", model, "--format", "npz", expect=2)
    check("is the input model" in r.stderr, r.stderr)
    missing = os.path.join(tmp, "no", "such", "dir", "w.safetensors")
    r = run("export", model, "-o", missing, expect=1)
    check(r.stderr.startswith("reinit: error: ") and "w.safetensors" in r.stderr, r.stderr)
    ro = os.path.join(tmp, "readonly")
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    if os.geteuid() != 0:  # root writes anyway
        r = run("export", model, "-o", os.path.join(ro, "w.npz"), expect=1)
        check(os.listdir(ro) == [], f"files left behind: {os.listdir(ro)}")
    # The sidecar cannot be written (a folder is in its place): the data file is not left either.
    target = os.path.join(tmp, "blocked.safetensors")
    os.mkdir(target + ".json")
    r = run("export", model, "-o", target, expect=1)
    check(not os.path.exists(target), "the data file was left without its sidecar")
    check("blocked.safetensors.json" in r.stderr, r.stderr)
    r = run("export", os.path.join(tmp, "absent.onnx"), "-o", os.path.join(tmp, "a.npz"), expect=1)
    check("absent.onnx" in r.stderr and not os.path.exists(os.path.join(tmp, "a.npz")), r.stderr)
    r = run("export", model, "-o", os.path.join(tmp, "l.npz"), "--scheme", "lsuv", expect=2)
    check("--as-is" in r.stderr, r.stderr)
    r = run("export", model, "-o", os.path.join(tmp, "p.npz"), "--plan", "x.json", "--seed", "3",
            expect=2)
    check("cannot be combined with --seed" in r.stderr, r.stderr)


# --- keras ----------------------------------------------------------------------------------

def keras_kernel_check(side, got, ref, name):
    """Every exported kernel against its ONNX weight, element by element (index formulas)."""
    n = 0
    for e in side["tensors"]:
        w = ref[e["source"]]
        k = got[e["name"]]
        if e["name"].endswith("/depthwise_kernel:0"):
            c, mult = k.shape[2], k.shape[3]
            for o in range(w.shape[0]):  # ONNX output channel o = c * mult + m
                for y in range(w.shape[2]):
                    for x in range(w.shape[3]):
                        n += 1
                        if k[y, x, o // mult, o % mult] != w[o, 0, y, x]:
                            return check(False, f"{name}: {e['name']}[{y},{x},{o // mult},{o % mult}]")
        elif e["name"].endswith("/kernel:0") and w.ndim == 4:
            # Conv W [out, in, kh, kw] -> kernel [kh, kw, in, out]; ConvTranspose W
            # [in, out, kh, kw] -> Conv2DTranspose kernel [kh, kw, out, in]: both k[y, x, b, a].
            for a, b, y, x in np.ndindex(*w.shape):
                n += 1
                if k[y, x, b, a] != w[a, b, y, x]:
                    return check(False, f"{name}: {e['name']} at W[{a},{b},{y},{x}]")
        elif e["name"].endswith("/kernel:0") and w.ndim == 2:
            t = "transpose" in e["transform"]
            check(np.array_equal(k, w.T if t else w), f"{name}: {e['name']}")
        else:
            check(np.array_equal(k, w.reshape(k.shape)), f"{name}: {e['name']}")
    return n


def test_keras_oww(tmp):
    src = os.path.join(SOURCE, "models", "thirdparty", "oww_embedding.onnx.gz")
    model = os.path.join(tmp, "oww_embedding.onnx")
    with gzip.open(src) as f, open(model, "wb") as g:
        g.write(f.read())
    out = os.path.join(tmp, "oww.out.onnx")
    run(model, "--seed", "5", "-o", out)
    st = os.path.join(tmp, "oww.safetensors")
    run("export", model, "--seed", "5", "--names", "keras", "-o", st)
    got, meta, _ = read_safetensors(st)
    check(meta.get("format") == "tf", f"oww: --names keras must be tagged format tf: {meta}")
    side = json.load(open(st + ".json"))
    names = sorted(got)
    want = sorted(["conv2d/kernel:0"] + [f"conv2d_{i}/kernel:0" for i in range(1, 20)])
    check(names == want, f"oww: keras names {names}")
    keras_kernel_check(side, got, onnx_arrays(out), "oww")
    kinds = {}
    for u in side["unmapped"]:
        kinds[u["kind"]] = kinds.get(u["kind"], 0) + 1
    check(kinds == {"folded_batchnorm": 19, "folded_shift": 19, "no_rule": 1},
          f"oww: unmapped {kinds}")
    bn = [u for u in side["unmapped"] if u["kind"] == "folded_batchnorm"][0]
    check(bn["name"].startswith("batch_normalization/gamma:0"), f"oww: {bn}")


def tf2onnx_graph(path):
    """A small graph with tf2onnx's names: Conv2D + BiasAdd, DepthwiseConv2D with fused BN,
    BatchNormalization, Conv2DTranspose, Dense (MatMul + BiasAdd)."""
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    inits = [
        init("model/conv2d/Conv2D/ReadVariableOp:0", 8, 2, 3, 3),
        init("model/conv2d/BiasAdd/ReadVariableOp:0", 8),
        init("model/depthwise_conv2d/depthwise_weights_fused_bn", 16, 1, 3, 3),
        init("model/depthwise_conv2d/depthwise_bias_fused_bn", 16),
        init("model/batch_normalization_1/ReadVariableOp:0", 16),
        init("model/batch_normalization_1/ReadVariableOp_1:0", 16),
        init("model/batch_normalization_1/FusedBatchNormV3/ReadVariableOp:0", 16),
        numpy_helper.from_array(np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5,
                                "model/batch_normalization_1/FusedBatchNormV3/ReadVariableOp_1:0"),
        init("model/conv2d_transpose/conv2d_transpose/ReadVariableOp:0", 16, 4, 2, 2),
        init("model/dense/MatMul/ReadVariableOp:0", 4, 5),
        init("model/dense/BiasAdd/ReadVariableOp:0", 5),
        numpy_helper.from_array(np.array([1, 6, 6, 4], dtype=np.int64), "new_shape__1"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "model/conv2d/Conv2D/ReadVariableOp:0"],
                         ["model/conv2d/Conv2D:0"], name="model/conv2d/Conv2D", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["model/conv2d/Conv2D:0", "model/conv2d/BiasAdd/ReadVariableOp:0"],
                         ["model/conv2d/BiasAdd:0"], name="model/conv2d/BiasAdd"),
        helper.make_node("Relu", ["model/conv2d/BiasAdd:0"], ["model/conv2d/Relu:0"],
                         name="model/conv2d/Relu"),
        helper.make_node("Conv", ["model/conv2d/Relu:0",
                                  "model/depthwise_conv2d/depthwise_weights_fused_bn",
                                  "model/depthwise_conv2d/depthwise_bias_fused_bn"],
                         ["model/batch_normalization/FusedBatchNormV3:0"],
                         name="model/depthwise_conv2d/depthwise", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization",
                         ["model/batch_normalization/FusedBatchNormV3:0",
                          "model/batch_normalization_1/ReadVariableOp:0",
                          "model/batch_normalization_1/ReadVariableOp_1:0",
                          "model/batch_normalization_1/FusedBatchNormV3/ReadVariableOp:0",
                          "model/batch_normalization_1/FusedBatchNormV3/ReadVariableOp_1:0"],
                         ["model/batch_normalization_1/FusedBatchNormV3:0"],
                         name="model/batch_normalization_1/FusedBatchNormV3"),
        helper.make_node("ConvTranspose", ["model/batch_normalization_1/FusedBatchNormV3:0",
                                           "model/conv2d_transpose/conv2d_transpose/ReadVariableOp:0"],
                         ["model/conv2d_transpose/conv2d_transpose:0"],
                         name="model/conv2d_transpose/conv2d_transpose", strides=[2, 2]),
        helper.make_node("Transpose", ["model/conv2d_transpose/conv2d_transpose:0"], ["t:0"],
                         name="model/conv2d_transpose/conv2d_transpose__5", perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["t:0", "model/dense/MatMul/ReadVariableOp:0"],
                         ["model/dense/MatMul:0"], name="model/dense/MatMul"),
        helper.make_node("Add", ["model/dense/MatMul:0", "model/dense/BiasAdd/ReadVariableOp:0"],
                         ["y"], name="model/dense/BiasAdd"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, producer_name="tf2onnx",
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def test_keras_built(tmp):
    model = os.path.join(tmp, "tf2onnx_style.onnx")
    tf2onnx_graph(model)
    for extra, label in (([], "as drawn"), (["--as-is"], "as-is")):
        out = os.path.join(tmp, "tf2onnx_style.out.onnx")
        if not extra:
            run(model, "--seed", "9", "-o", out)
        ref = onnx_arrays(out if not extra else model)
        st = os.path.join(tmp, "tf2onnx_style.safetensors")
        run("export", model, "--seed", "9", "--names", "keras", "-o", st, *extra)
        got, _, _ = read_safetensors(st)
        side = json.load(open(st + ".json"))
        want = {"conv2d/kernel:0": [3, 3, 2, 8], "conv2d/bias:0": [8],
                "batch_normalization_1/gamma:0": [16], "batch_normalization_1/beta:0": [16],
                "batch_normalization_1/moving_mean:0": [16],
                "batch_normalization_1/moving_variance:0": [16],
                "conv2d_transpose/kernel:0": [2, 2, 4, 16], "dense/kernel:0": [4, 5],
                "dense/bias:0": [5]}
        if not extra:  # drawn afresh, the fused depthwise kernel is the layer's own
            want["depthwise_conv2d/depthwise_kernel:0"] = [3, 3, 8, 2]
        check({k: list(v.shape) for k, v in got.items()} == want,
              f"tf2onnx graph ({label}): {sorted((k, list(v.shape)) for k, v in got.items())}")
        n = keras_kernel_check(side, got, ref, f"tf2onnx graph ({label})")
        check(n > 0, "no element checked")
        kinds = sorted(u["kind"] for u in side["unmapped"])
        expect = ["folded_batchnorm", "folded_shift"] + ([] if not extra else ["folded_weight"])
        check(kinds == sorted(expect), f"tf2onnx graph ({label}): unmapped {side['unmapped']}")


# --- torch: a tied weight -------------------------------------------------------------------

def test_torch_tied(tmp):
    """A head tied to the token table as torch.onnx's training export writes it (the lm_head's
    MatMul reads the Transpose of transformer.wte.weight): the second key is listed as tied, not
    written; a module using its own parameters functionally (MultiheadAttention's in_proj_weight,
    out_proj.weight) is no tie."""
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Gather", ["transformer.wte.weight", "ids"], ["e"],
                         name="/transformer/wte/Gather"),
        helper.make_node("Transpose", ["transformer.h.0.attn.in_proj_weight"], ["t0"],
                         name="/transformer/h.0/attn/Transpose", perm=[1, 0]),
        helper.make_node("MatMul", ["e", "t0"], ["a"], name="/transformer/h.0/attn/MatMul"),
        helper.make_node("Transpose", ["transformer.h.0.attn.out_proj.weight"], ["t1"],
                         name="/transformer/h.0/attn/Transpose_1", perm=[1, 0]),
        helper.make_node("MatMul", ["a", "t1"], ["b"], name="/transformer/h.0/attn/MatMul_1"),
        helper.make_node("Transpose", ["transformer.wte.weight"], ["t2"],
                         name="/lm_head/Transpose", perm=[1, 0]),
        helper.make_node("MatMul", ["b", "t2"], ["logits"], name="/lm_head/MatMul"),
    ]
    graph = helper.make_graph(
        nodes, "tied",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 10])],
        [init("transformer.wte.weight", 10, 8), init("transformer.h.0.attn.in_proj_weight", 8, 8),
         init("transformer.h.0.attn.out_proj.weight", 8, 8)])
    model = helper.make_model(graph, producer_name="pytorch",
                              opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(tmp, "tied.onnx")
    onnx.save(model, path)
    st = os.path.join(tmp, "tied.safetensors")
    r = run("export", path, "--names", "torch", "--seed", "3", "-o", st)
    check("(1 unmapped)" in r.stdout, f"tied graph: {r.stdout.splitlines()[-1:]}")
    got, _, _ = read_safetensors(st)
    check(sorted(got) == ["transformer.h.0.attn.in_proj_weight",
                          "transformer.h.0.attn.out_proj.weight", "transformer.wte.weight"],
          f"tied graph: exports {sorted(got)}")
    side = json.load(open(st + ".json"))
    u = side["unmapped"]
    check(len(u) == 1 and u[0]["kind"] == "tied" and u[0]["name"] == "lm_head.weight"
          and u[0]["source"] == "transformer.wte.weight" and u[0]["node"] == "/lm_head/MatMul"
          and "strict=False" in u[0]["reason"], f"tied graph: unmapped {u}")


def main():
    setup(sys.argv[1], sys.argv[2])
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("resnet18.eval", "transformer_encoder.eval", "lstm_embedding.eval",
                     "bigru.eval", "dcgan_generator.train", "vit_small.eval"):
            side = test_values(tmp, name)
            test_sidecar_matches_plan(tmp, name, side)
        test_as_is(tmp)
        test_torch_names(tmp, quick="--quick" in sys.argv[3:])
        test_errors(tmp)
        test_keras_oww(tmp)
        test_keras_built(tmp)
        test_torch_tied(tmp)
    print(f"{len(FAILURES)} failures, {time.time() - t0:.1f} s")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
