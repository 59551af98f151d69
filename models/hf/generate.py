"""Writes the tiny Hugging Face transformers models that tests/export_transformers_test.py
loads reinit's `export --names torch` output back into, through transformers' own loaders.

Each model is built from a config (no hub download: `from_config`-style constructors, tiny
sizes), exported with the TorchScript exporter the way that keeps every parameter an
initializer under its state_dict key — torch.onnx.export(dynamo=False, opset 17,
training=TrainingMode.TRAINING, do_constant_folding=False, export_params=True), the same
settings as models/corpus/'s train variant — and written into models/hf/<name>/:

  <name>.onnx.gz          the model with the weights transformers initialized (not zeroed: the
                          test checks that reinit's export holds other values), gzip -9 with
                          no name or time in the header
  config.json             model.config.to_json_file: what from_config / from_pretrained read
  <name>.state_dict.json  the module's own state_dict: every key with its shape, dtype and kind
                          as torch reports them, the key it is tied to (the same tensor), the
                          ONNX initializer it became or why none; the buffers that are not in
                          the state_dict (persistent=False); the ONNX Runtime check below

Dropout is 0 in every config, so the training-mode graph computes what the module does: the
ONNX model's output under ONNX Runtime is checked against torch's before anything is written.

Usage: /work/venv-hf/bin/python models/hf/generate.py [--only NAME] [--out DIR]
Needs torch, transformers, onnx, onnxruntime and numpy (models/hf/README.md: the versions).
"""

import argparse
import gzip
import io
import json
import os
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers

OPSET = 17
SEED = 0
SEQ = 8  # tokens per text input
HERE = os.path.dirname(os.path.abspath(__file__))


def bert():
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, num_labels=3,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(config), "AutoModelForSequenceClassification"


def gpt2():
    config = transformers.GPT2Config(
        vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=32, use_cache=False,
        bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(config), "AutoModelForCausalLM"


def vit():
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, num_labels=10,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.ViTForImageClassification(config), "AutoModelForImageClassification"


def text_inputs(vocab):
    g = torch.Generator().manual_seed(SEED)
    return {"input_ids": torch.randint(0, vocab, (1, SEQ), generator=g),
            # Given explicitly: without it transformers 5's mask code looks for packed
            # sequences with torch.diff, which the TorchScript exporter cannot write.
            "attention_mask": torch.ones(1, SEQ, dtype=torch.int64)}


def image_inputs():
    g = torch.Generator().manual_seed(SEED)
    return {"pixel_values": torch.randn(1, 3, 32, 32, generator=g)}


# name: (builder, inputs)
MODELS = {
    "bert": (bert, lambda: text_inputs(100)),
    "gpt2": (gpt2, lambda: text_inputs(100)),
    "vit": (vit, image_inputs),
}

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
               onnx.TensorProto.BFLOAT16)


def export(model, inputs, path):
    names = list(inputs)

    # The TorchScript exporter appends every defaulted parameter of forward's signature as a
    # graph input (GPT-2's logits_to_keep=0 would become one): forward is narrowed to the
    # inputs given, on the instance only, so the modules and their scopes are as they are.
    def forward(*args):
        return type(model).forward(model, **dict(zip(names, args)))

    model.forward = forward
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
            torch.onnx.export(model, tuple(inputs.values()), path, dynamo=False,
                              opset_version=OPSET, training=torch.onnx.TrainingMode.TRAINING,
                              do_constant_folding=False, export_params=True, input_names=names,
                              output_names=["logits"])
    finally:
        del model.forward


def describe(model, proto):
    """The state_dict as torch reports it, each key against the ONNX initializers."""
    params = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    state = model.state_dict()
    inits = {t.name: t for t in proto.graph.initializer}
    tied_declared = dict(getattr(model, "all_tied_weights_keys", None) or {})
    by_storage = {}
    entries = []
    for key, t in state.items():
        ptr = (t.data_ptr(), tuple(t.shape), t.dtype)
        tied_to = by_storage.setdefault(ptr, key)
        e = {"key": key, "shape": list(t.shape), "dtype": str(t.dtype),
             "kind": "parameter" if key in params else "buffer",
             "tied_to": tied_to if tied_to != key else None}
        if tied_to != key and tied_declared.get(key) != tied_to:
            raise RuntimeError(f"{key} shares {tied_to}'s tensor, but the model declares "
                               f"{tied_declared.get(key)}")
        if key in inits:
            i = inits[key]
            if list(i.dims) != e["shape"]:
                raise RuntimeError(f"{key}: ONNX {list(i.dims)}, torch {e['shape']}")
            same = np.array_equal(onnx.numpy_helper.to_array(i), t.detach().cpu().numpy())
            if not same:
                raise RuntimeError(f"{key}: the ONNX initializer holds other values")
            e["onnx"] = key
        elif e["tied_to"] and e["tied_to"] in inits:
            e["onnx"] = None
            e["why_not"] = (f"tied to {e['tied_to']} (the same tensor): the exporter writes "
                            f"a shared parameter once, under its first name")
        else:
            raise RuntimeError(f"{key}: no ONNX initializer and no reason")
        entries.append(e)
    kept = set(state)
    non_persistent = [
        {"name": n, "shape": list(b.shape), "dtype": str(b.dtype),
         "why": "a buffer registered with persistent=False: not in the state_dict, rebuilt by "
                "the module's constructor"}
        for n, b in model.named_buffers() if n not in kept]
    others = [{"onnx": t.name, "shape": list(t.dims), "data_type": t.data_type}
              for t in proto.graph.initializer if t.name not in kept]
    if any(o["data_type"] in FLOAT_TYPES for o in others):
        raise RuntimeError(f"float initializers that are no state_dict key: {others}")
    return entries, non_persistent, others


def check_ort(model, inputs, path):
    """The ONNX model's logits under ONNX Runtime against the module's."""
    with torch.no_grad():
        want = model(**inputs).logits.numpy()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    diff = float(np.max(np.abs(got - want)))
    if got.shape != want.shape or not diff < 1e-4:
        raise RuntimeError(f"ONNX Runtime's output differs from torch's by {diff}")
    return diff


def write_gzip(path, data):
    buf = io.BytesIO()
    # No file name and mtime 0 in the header: the same model gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def build_one(name, out_dir, tmp):
    builder, make_inputs = MODELS[name]
    torch.manual_seed(SEED)
    model, auto_class = builder()
    model.config.architectures = [type(model).__name__]
    model.train()  # the export's mode; dropout is 0, so it computes what eval does
    inputs = make_inputs()
    path = os.path.join(tmp, name + ".onnx")
    export(model, inputs, path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    entries, non_persistent, others = describe(model, proto)
    diff = check_ort(model, inputs, path)
    doc = {
        "model": name,
        "class": type(model).__name__,
        "auto_class": auto_class,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "export": {"exporter": "torch.onnx.export(dynamo=False)", "opset": OPSET,
                   "training": "TrainingMode.TRAINING", "do_constant_folding": False,
                   "export_params": True},
        "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in inputs.items()},
        "onnxruntime_max_abs_diff": diff,
        "state_dict": entries,
        "not_in_state_dict": non_persistent,
        "other_initializers": others,
    }
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    write_gzip(os.path.join(folder, name + ".onnx.gz"), proto.SerializeToString())
    model.config.to_json_file(os.path.join(folder, "config.json"))
    with open(os.path.join(folder, name + ".state_dict.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    tied = [e["key"] for e in entries if e["tied_to"]]
    print(f"{name}: {type(model).__name__}, {len(proto.graph.node)} nodes, {len(entries)} "
          f"state_dict keys ({len(tied)} tied: {tied}), not in the state_dict: "
          f"{[b['name'] for b in non_persistent]}, ONNX Runtime within {diff:.1e}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", choices=sorted(MODELS),
                    help="write only this model (repeatable)")
    ap.add_argument("--out", default=HERE, help="output folder (default: beside this script)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or list(MODELS):
            build_one(name, args.out, tmp)


if __name__ == "__main__":
    main()
