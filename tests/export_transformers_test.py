"""reinit export --names torch read back by the safetensors package and by Hugging Face
transformers' own loaders, on the tiny transformers models of models/hf/.

  export_transformers_test.py REINIT SOURCE_DIR

For each model (models/hf/<name>/: <name>.onnx.gz, config.json, <name>.state_dict.json, written
by models/hf/generate.py) it runs `reinit export MODEL --names torch -o w.safetensors --scheme
auto --seed 1 -q`, then:

(a) always (numpy, onnx and safetensors, the project venv): the file through the safetensors
    package's own loader (safetensors.numpy.load_file; safe_open(framework="np") for the
    metadata): format "pt"; every state_dict key that the ONNX model holds is there with the
    shape and dtype torch reported, and nothing else; every key left out is in the sidecar's
    `unmapped` with its reason (a tied weight: the same tensor as another key, written once);
    the values are the plan's (a drawn tensor differs from the original at every element and
    keeps to its bound or standard deviation, a constant is one value, a kept tensor is the
    original) and equal, tensor by tensor, the .onnx `reinit MODEL --scheme auto --seed 1`
    writes.
(b) where torch and transformers import (skipped, saying why, otherwise: CI has no torch): the
    model built from the committed config.json (AutoConfig, from_config); the file through
    transformers.modeling_utils.load_state_dict and model.load_state_dict (missing keys exactly
    the ones (a) explains, none unexpected), and through Auto*.from_pretrained of a folder with
    config.json and model.safetensors (no key missing, unexpected or mismatched); the loaded
    parameters equal the file's, tied ones included; the forward pass is finite and, where
    onnxruntime imports, equals ONNX Runtime's on reinit's .onnx. And the format check is live:
    a copy tagged format "safetensors" is refused by both loaders of a transformers that reads
    the tag (4.x; 5.x reads none, which is printed). A transformers whose module names differ
    from the recorded ones (4.x's ViT) only has the format checked.
    To run (b): the venv of models/hf/README.md, `VENV/bin/python tests/export_transformers_test.py
    build/reinit .`

One line per check; exit 0 only if every check passes, 77 (skipped) without numpy, onnx or
safetensors.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx
    import safetensors
    import safetensors.numpy
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_test as et  # noqa: E402 (the recorded transforms, recomputed)

REINIT = None
FAILURES = []
SEED = "1"
TORCH_DTYPES = {"torch.float32": np.float32, "torch.float16": np.float16,
                "torch.float64": np.float64, "torch.int64": np.int64}


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def run(*args):
    return subprocess.run([REINIT, *args], capture_output=True, text=True)


def models(source):
    root = os.path.join(source, "models", "hf")
    return [os.path.join(root, d) for d in sorted(os.listdir(root))
            if os.path.isfile(os.path.join(root, d, "config.json"))]


def prepare(folder, tmp):
    """The model unpacked, its export and reinit's .onnx with the same options."""
    name = os.path.basename(folder)
    rec = json.load(open(os.path.join(folder, name + ".state_dict.json")))
    model = os.path.join(tmp, name + ".onnx")
    with gzip.open(os.path.join(folder, name + ".onnx.gz")) as f, open(model, "wb") as g:
        g.write(f.read())
    st = os.path.join(tmp, name + ".safetensors")
    r = run("export", model, "--names", "torch", "-o", st, "--scheme", "auto", "--seed", SEED,
            "-q")
    check(r.returncode == 0, f"{name}: reinit export --names torch exits {r.returncode} "
                             f"{r.stderr.strip()}")
    out = os.path.join(tmp, name + ".reinit.onnx")
    r = run(model, "--scheme", "auto", "--seed", SEED, "-o", out, "-q")
    check(r.returncode == 0, f"{name}: reinit --scheme auto exits {r.returncode} "
                             f"{r.stderr.strip()}")
    return name, rec, model, st, out


# --- (a) the safetensors package's own loader ------------------------------------------------

def left_out(rec, got):
    """The recorded state_dict keys the file does not hold."""
    return [e for e in rec["state_dict"] if e["key"] not in got]


def check_values(name, side, got, model, reinit_out):
    """Every exported tensor against the plan and against the original and reinit's .onnx."""
    original, proto = et.onnx_arrays(model), onnx.load(model)
    counts = {"drawn": 0, "constant": 0, "kept": 0}
    bad, kept = [], []
    for e in side["tensors"]:
        v = got[e["name"]].astype(np.float64)
        src = original[e["source"]].astype(np.float64)
        orig = et.torch_view(e, src, proto)
        scheme = e["scheme"]
        if scheme in ("keep", "unchanged (not in the plan)"):
            counts["kept"] += 1
            kept.append(e["name"])
            ok = np.array_equal(v, orig)
        elif scheme in ("zero", "constant"):
            counts["constant"] += 1
            ok = v.size > 0 and np.all(v == v.flat[0]) and (scheme != "zero" or v.flat[0] == 0)
        else:
            counts["drawn"] += 1
            ok = not np.any(v == orig)  # a fresh draw equals no original element
            if e["bound"] > 0:
                ok = ok and np.max(np.abs(v)) <= e["bound"] * (1 + 1e-6)
            elif e["std"] > 0 and "truncated" not in scheme:
                # 5 standard errors of a sample standard deviation, sigma / sqrt(2 n).
                se = e["std"] / np.sqrt(2 * v.size)
                ok = ok and abs(v.std() - e["std"]) <= 5 * se
        if not ok:
            bad.append(f"{e['name']} ({scheme})")
    kept_text = f" ({', '.join(kept)}: the plan keeps them)" if kept else ""
    check(not bad, f"{name}: {counts['drawn']} tensors re-drawn (no element equal to the "
                   f"original, within the plan's bound or std), {counts['constant']} set to "
                   f"a constant, {counts['kept']} kept as they were{kept_text}" +
          (f"; wrong: {bad}" if bad else ""))
    ref = et.onnx_arrays(reinit_out)
    differ = [e["name"] for e in side["tensors"]
              if not np.array_equal(got[e["name"]], et.torch_view(e, ref[e["source"]], proto))]
    check(not differ, f"{name}: every tensor equals the .onnx `reinit --scheme auto --seed "
                      f"{SEED}` writes" + (f"; differ: {differ}" if differ else ""))


def part_a(name, rec, model, st, out):
    from safetensors import safe_open
    with safe_open(st, framework="np") as f:
        meta = f.metadata()
        keys = sorted(f.keys())
    got = safetensors.numpy.load_file(st)
    side = json.load(open(st + ".json"))
    check(meta.get("format") == "pt" and meta.get("names") == "torch",
          f"{name}: safe_open(framework='np').metadata() says format "
          f"{meta.get('format')!r}, names {meta.get('names')!r} (want 'pt', 'torch')")
    check(sorted(got) == keys == sorted(e["name"] for e in side["tensors"]),
          f"{name}: safetensors.numpy.load_file reads {len(got)} tensors, the sidecar lists "
          f"the same")

    recorded = {e["key"]: e for e in rec["state_dict"]}
    held = [e for e in rec["state_dict"] if e["onnx"]]
    wrong = [f"{e['key']} {e['shape']} {e['dtype']}: "
             + (f"{list(got[e['key']].shape)} {got[e['key']].dtype}" if e["key"] in got
                else "absent")
             for e in held
             if e["key"] not in got or list(got[e["key"]].shape) != e["shape"]
             or got[e["key"]].dtype != TORCH_DTYPES.get(e["dtype"])]
    learned = sum(e["kind"] == "parameter" for e in held)
    check(not wrong, f"{name}: all {len(held)} state_dict keys the ONNX model holds "
                     f"({learned} learned parameters, {len(held) - learned} buffers) are there "
                     f"with torch's shape and dtype" + (f"; wrong: {wrong}" if wrong else ""))
    extra = sorted(set(got) - set(recorded))
    check(not extra, f"{name}: no tensor that is not a state_dict key" +
          (f"; extra: {extra}" if extra else ""))

    unmapped = {u["name"]: u for u in side["unmapped"] if u.get("name")}
    missing = left_out(rec, got)
    explained = [e for e in missing if e["key"] in unmapped]
    check(len(explained) == len(missing),
          f"{name}: every state_dict key left out is in the sidecar's unmapped: " +
          ("; ".join(f"{e['key']} ({unmapped[e['key']]['kind']}: "
                     f"{unmapped[e['key']]['reason']})" for e in explained)
           or ("none left out" if not missing else "")) +
          ("; not listed: " + ", ".join(f"{e['key']} ({e.get('why_not')})"
                                        for e in missing if e["key"] not in unmapped)
           if len(explained) != len(missing) else ""))
    others = [u for u in side["unmapped"] if u.get("name") not in recorded]
    check(not others, f"{name}: nothing else is unmapped" + (f"; {others}" if others else ""))
    if rec["not_in_state_dict"]:
        print(f"      {name}: not in the state_dict at all, so not expected: " +
              ", ".join(b["name"] for b in rec["not_in_state_dict"]) +
              " (buffers registered with persistent=False, rebuilt by the constructor)")
    check_values(name, side, got, model, out)
    return got, meta, missing


# --- (b) transformers' loaders ----------------------------------------------------------------

def torch_available():
    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder; no hub, ever
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def make_inputs(rec, config):
    rng = np.random.default_rng(0)
    out = {}
    for k, spec in rec["inputs"].items():
        shape = spec["shape"]
        if k == "attention_mask":
            out[k] = np.ones(shape, dtype=np.int64)
        elif spec["dtype"] == "torch.int64":
            out[k] = rng.integers(0, config.vocab_size, size=shape, dtype=np.int64)
        else:
            out[k] = rng.standard_normal(shape).astype(np.float32)
    return out


def same_values(module, got, rec):
    """Keys whose loaded value is not the file's (a tied key: its partner's value)."""
    state = module.state_dict()
    bad = []
    for e in rec["state_dict"]:
        want = got.get(e["key"])
        if want is None and e["tied_to"]:
            want = got.get(e["tied_to"])
        if want is None or not np.array_equal(state[e["key"]].detach().cpu().numpy(), want):
            bad.append(e["key"])
    return bad


def forward(module, inputs):
    import torch
    module.eval()
    with torch.no_grad():
        out = module(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return out.logits.detach().cpu().numpy()


def refuses(load):
    try:
        load()
    except Exception as e:  # transformers 4.x: OSError (load_state_dict), ValueError (from_pretrained)
        return f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return None


def part_b(folder, name, rec, st, out, got, meta, missing, tmp):
    import transformers
    from transformers.modeling_utils import load_state_dict
    auto = getattr(transformers, rec["auto_class"])
    config = transformers.AutoConfig.from_pretrained(folder)
    model = auto.from_config(config)
    check(type(model).__name__ == rec["class"],
          f"{name}: {rec['auto_class']}.from_config(config.json) builds {type(model).__name__}")
    keys = set(model.state_dict())
    recorded = {e["key"] for e in rec["state_dict"]}
    if keys != recorded and transformers.__version__ != rec["transformers"]:
        # transformers 5 renamed some models' modules (ViT's encoder.layer.N.attention.attention
        # .query became layers.N.attention.q_proj): another version's keys are another module.
        print(f"      {name}: transformers {transformers.__version__}'s {type(model).__name__} "
              f"has other state_dict keys than {rec['transformers']}'s, which the model was "
              f"exported from ({sorted(keys - recorded)[:1]} for {sorted(recorded - keys)[:1]}): "
              f"not loaded here; only the format check runs")
        check_format_tag(folder, name, got, meta, auto, tmp)
        return
    check(keys == recorded, f"{name}: the module's state_dict keys are the recorded ones" +
          ("" if keys == recorded else f"; {sorted(keys ^ recorded)}"))

    try:
        sd = load_state_dict(st)
    except Exception as e:  # 4.x refuses a format other than pt, tf, flax, mlx
        check(False, f"{name}: transformers.modeling_utils.load_state_dict refuses the file: "
                     f"{type(e).__name__}: {e}")
        return
    check(sorted(sd) == sorted(got) and all(
        np.array_equal(sd[k].numpy(), got[k]) for k in got),
        f"{name}: transformers.modeling_utils.load_state_dict reads the {len(got)} tensors "
        f"safetensors does")
    result = model.load_state_dict(sd, strict=False)
    want_missing = sorted(e["key"] for e in missing)
    check(sorted(result.missing_keys) == want_missing and not result.unexpected_keys,
          f"{name}: load_state_dict(strict=False): missing {sorted(result.missing_keys)} "
          f"(want {want_missing}: the keys (a) explains), unexpected {result.unexpected_keys}")
    if not want_missing:
        try:
            model.load_state_dict(sd, strict=True)
            check(True, f"{name}: load_state_dict(strict=True)")
        except RuntimeError as e:
            check(False, f"{name}: load_state_dict(strict=True): {e}")
    bad = same_values(model, got, rec)
    check(not bad, f"{name}: every parameter of the module equals the file's (tied ones their "
                   f"partner's)" + (f"; differ: {bad}" if bad else ""))
    inputs = make_inputs(rec, config)
    logits = forward(model, inputs)
    check(np.all(np.isfinite(logits)),
          f"{name}: forward pass, logits {list(logits.shape)} finite (std {logits.std():.3g})")
    try:
        import onnxruntime as ort
        session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        ref = session.run(None, inputs)[0]
        diff = float(np.max(np.abs(ref - logits)))
        check(ref.shape == logits.shape and diff < 1e-4,
              f"{name}: the logits equal ONNX Runtime's on reinit's .onnx (max abs diff "
              f"{diff:.1e})")
    except ImportError as e:
        print(f"      {name}: not compared with ONNX Runtime ({e})")

    pretrained = os.path.join(tmp, name + ".pretrained")
    os.makedirs(pretrained)
    shutil.copy(os.path.join(folder, "config.json"), pretrained)
    shutil.copy(st, os.path.join(pretrained, "model.safetensors"))
    try:
        loaded, info = auto.from_pretrained(pretrained, output_loading_info=True)
    except Exception as e:
        check(False, f"{name}: {rec['auto_class']}.from_pretrained refuses the file: "
                     f"{type(e).__name__}: {e}")
        return
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"} | (
        {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {})
    check(not problems, f"{name}: {rec['auto_class']}.from_pretrained(config.json + "
                        f"model.safetensors): no key missing, unexpected or mismatched" +
          (f"; {problems}" if problems else ""))
    bad = same_values(loaded, got, rec)
    check(not bad, f"{name}: from_pretrained's parameters equal the file's (tied ones their "
                   f"partner's)" + (f"; differ: {bad}" if bad else ""))
    again = forward(loaded, inputs)
    diff = float(np.max(np.abs(again - logits)))
    check(again.shape == logits.shape and diff < 1e-5,
          f"{name}: from_pretrained's forward pass gives the same logits (max abs diff "
          f"{diff:.1e})")

    check_format_tag(folder, name, got, meta, auto, tmp)


def check_format_tag(folder, name, got, meta, auto, tmp):
    """The same tensors tagged format "safetensors": a loader that reads the tag refuses them."""
    import transformers
    from transformers.modeling_utils import load_state_dict
    wrong = os.path.join(tmp, name + ".wrong")
    os.makedirs(wrong)
    shutil.copy(os.path.join(folder, "config.json"), wrong)
    bad_file = os.path.join(wrong, "model.safetensors")
    safetensors.numpy.save_file(got, bad_file, metadata=dict(meta, format="safetensors"))
    with safetensors.safe_open(bad_file, framework="np") as f:
        tagged = f.metadata().get("format")
    refused = [refuses(lambda: load_state_dict(bad_file)),
               refuses(lambda: auto.from_pretrained(wrong))]
    version = transformers.__version__
    if int(version.split(".")[0]) < 5:
        check(tagged == "safetensors" and all(refused),
              f"{name}: transformers {version} refuses the copy tagged format 'safetensors': "
              f"load_state_dict {refused[0]}; from_pretrained {refused[1]}")
    else:
        print(f"      {name}: transformers {version} reads no format tag: the copy tagged "
              f"'safetensors' is {'refused' if any(refused) else 'accepted'} "
              f"(load_state_dict: {refused[0] or 'loads'}, from_pretrained: "
              f"{refused[1] or 'loads'}); the refusal is checked under transformers 4.x")


def main():
    global REINIT
    REINIT, source = sys.argv[1], sys.argv[2]
    t0 = time.time()
    print(f"(a) with safetensors {safetensors.__version__}, numpy {np.__version__}")
    why_not = torch_available()
    if why_not:
        print(f"(b) skipped: {why_not} (transformers' loaders need torch and transformers)")
    else:
        import torch
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        torch.set_num_threads(1)
        print(f"(b) with torch {torch.__version__}, transformers {transformers.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for folder in models(source):
            name, rec, model, st, out = prepare(folder, tmp)
            if not os.path.exists(st):
                continue
            got, meta, missing = part_a(name, rec, model, st, out)
            if not why_not:
                part_b(folder, name, rec, st, out, got, meta, missing, tmp)
    print(f"{len(FAILURES)} failures, {time.time() - t0:.1f} s")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
