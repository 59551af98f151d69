"""reinit export --names torch loaded into the torch modules the corpus was exported from.

  export_torch_test.py REINIT SOURCE_DIR

For every corpus architecture and variant, the module is rebuilt exactly as
models/corpus/export.py builds it (its MODELS builders, imported, under its seed), the corpus
model is exported with `reinit export --names torch --seed 7`, and the tensors are loaded:

- train variant: load_state_dict(strict=True) — every parameter and buffer is there;
- eval variant: load_state_dict(strict=False); the unexpected keys must be none and the missing
  keys exactly the tensors of the BatchNorms the sidecar lists as folded: for each folded conv
  it names, the BatchNorm that follows that conv in the module, all five of its tensors.

Every loaded tensor must then equal the tensor of the .onnx that `reinit M --seed 7 -o out.onnx`
writes, after the sidecar's recorded transform (recomputed by tests/export_test.py). Exits 77
(skipped) without python3-torch, torchvision, onnx or numpy.
"""

import concurrent.futures
import gzip
import importlib.util
import json
import os
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx  # noqa: F401 (export.py and export_test need it)
    import torch
    import torchvision  # noqa: F401
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_test as et  # noqa: E402 (the safetensors reader and the transforms)


def load_corpus_exporter(source):
    spec = importlib.util.spec_from_file_location(
        "corpus_export", os.path.join(source, "models", "corpus", "export.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(corpus, name, variant):
    """The module as export.py's export() builds it, before export."""
    builder, _ = corpus.MODELS[name]
    torch.manual_seed(corpus.SEED)
    model = builder(variant)
    return model.eval() if variant == "eval" else model.train()


def folded_batchnorms(model, side):
    """The BatchNorm module after each conv the sidecar lists as having one folded in."""
    modules = list(model.named_modules())
    order = {n: i for i, (n, _) in enumerate(modules)}
    out = set()
    for u in side["unmapped"]:
        if u["kind"] != "folded_batchnorm":
            continue
        conv = u["name"][len("the BatchNorm after '"):-1]
        if not et.check(conv in order, f"folded entry names no module: {u}"):
            continue
        after = [n for n, m in modules[order[conv] + 1:]
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if et.check(after, f"no BatchNorm after '{conv}'"):
            out.add(after[0])
    return out


def prepare(tmp, base):
    """reinit's .onnx and its torch-named export of one corpus model."""
    model_path = os.path.join(tmp, base + ".onnx")
    with gzip.open(os.path.join(et.CORPUS, base + ".onnx.gz")) as f, open(model_path, "wb") as g:
        g.write(f.read())
    out = os.path.join(tmp, base + ".out.onnx")
    et.run(model_path, "--seed", "7", "--skip-check", "-o", out)
    st = os.path.join(tmp, base + ".safetensors")
    et.run("export", model_path, "--seed", "7", "--names", "torch", "-o", st)
    return out, st


def test(corpus, name, variant, out, st):
    base = f"{name}.{variant}"
    got, _, _ = et.read_safetensors(st)
    side = json.load(open(st + ".json"))
    module = build(corpus, name, variant)
    state = {k: torch.from_numpy(np.array(v)) for k, v in got.items()}
    if variant == "train":
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            et.check(False, f"{base}: strict load: {e}")
            return
        missing = []
    else:
        result = module.load_state_dict(state, strict=False)
        et.check(result.unexpected_keys == [], f"{base}: unexpected {result.unexpected_keys}")
        bns = folded_batchnorms(module, side)
        expected = {f"{bn}.{t}" for bn in bns
                    for t in ("weight", "bias", "running_mean", "running_var")}
        # torch 1.13's BatchNorm fills in a missing num_batches_tracked itself (a state_dict
        # of before its version 2); other versions report it missing.
        counters = {k for k in result.missing_keys if k.endswith(".num_batches_tracked")}
        et.check(all(k[:-len(".num_batches_tracked")] in bns for k in counters),
                 f"{base}: missing counters of BatchNorms not folded: {sorted(counters)[:4]}")
        missing = [k for k in result.missing_keys if k not in counters]
        et.check(set(missing) == expected,
                 f"{base}: missing {sorted(set(missing) ^ expected)[:6]} (symmetric difference "
                 f"with the folded BatchNorms' tensors)")
    ref = et.onnx_arrays(out)
    ref_model = onnx.load(out)
    loaded = module.state_dict()
    for e in side["tensors"]:
        if e["source"] is None:
            continue
        want = et.torch_view(e, ref[e["source"]], ref_model)
        have = loaded[e["name"]].numpy()
        et.check(have.shape == want.shape and np.array_equal(have, want),
                 f"{base}: loaded '{e['name']}' is not {e['transform']} of '{e['source']}'")
    print(f"{base:32} {len(got):4} loaded, {len(missing):4} missing (folded BatchNorms)",
          flush=True)


def main():
    et.setup(sys.argv[1], sys.argv[2])
    torch.set_num_threads(1)
    corpus = load_corpus_exporter(sys.argv[2])
    t0 = time.time()
    cases = [(n, v) for n in corpus.MODELS for v in corpus.VARIANTS
             if (n, v) not in corpus.SKIP_VARIANTS]
    with tempfile.TemporaryDirectory() as tmp:
        # The reinit runs two at a time (they are most of the time), the torch part after.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            files = list(pool.map(lambda c: prepare(tmp, f"{c[0]}.{c[1]}"), cases))
        for (name, variant), (out, st) in zip(cases, files):
            test(corpus, name, variant, out, st)
    print(f"{len(et.FAILURES)} failures, {time.time() - t0:.1f} s")
    sys.exit(1 if et.FAILURES else 0)


if __name__ == "__main__":
    main()
