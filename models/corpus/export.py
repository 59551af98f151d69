"""Exports the corpus of real architectures that tests/corpus_test.py checks reinit against.

Each model is exported twice with torch.onnx.export (opset 17, batch 1, fixed small inputs,
random init under torch.manual_seed):

  <name>.eval.onnx.gz   eval mode, the default export: BatchNorm folded into Conv, constants
                        folded, folded tensors get generated names (onnx::Conv_123).
  <name>.train.onnx.gz  training=TrainingMode.TRAINING, do_constant_folding=False: every
                        parameter and buffer stays an initializer under its torch name
                        (conv1.weight, bn1.running_mean, ...); BatchNormalization is exported
                        in training mode and a Linear on a 3-D/4-D input keeps its
                        Transpose. (efficientnet_b0 and convnext_tiny: see MODELS.)

Every floating-point initializer is then zeroed (dims, data type and storage field kept) so the
files gzip to almost nothing, and written gzip -9 with no name or time in the header.

Beside each model, <name>.<variant>.params.json lists every float parameter and buffer of the
torch module: its name, shape, torch.nn.init._calculate_fan_in_and_fan_out (dim >= 2), the ONNX
initializer it became and how it was found (by name; in the eval export by the node exported
from its module, checked against the values before zeroing, or by values alone), or why none.

Usage: /usr/bin/python3 models/corpus/export.py [--only NAME] [--out DIR]
Needs python3-torch, python3-torchvision, python3-onnx, python3-numpy (Debian 12).
"""

import argparse
import gzip
import io
import json
import os
import tempfile
import time
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
import torch
from torch import nn
import torchvision
from torchvision.models.vision_transformer import VisionTransformer

OPSET = 17  # the highest opset torch 1.13 exports and the Debian onnx 1.12 checker knows
SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))


# --- the small hand-written models -------------------------------------------------------

class DcganGenerator(nn.Module):
    """The PyTorch DCGAN tutorial's generator (nz=16, ngf=16, nc=3): 1x1 noise to 64x64."""

    def __init__(self, nz=16, ngf=16, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


class LstmTagger(nn.Module):
    """Embedding(100, 32) -> 2-layer LSTM(32, 64) -> Linear(64, 10); input [seq, batch] ids."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(100, 32)
        self.lstm = nn.LSTM(32, 64, num_layers=2)
        self.fc = nn.Linear(64, 10)

    def forward(self, ids):
        out, _ = self.lstm(self.embedding(ids))
        return self.fc(out)


class BiGru(nn.Module):
    """Bidirectional GRU(16, 32, batch_first) -> Linear(64, 10)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(16, 32, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out)


class TransformerEncoderModel(nn.Module):
    """Linear(16, 64) -> TransformerEncoder(d_model 64, 4 heads, ff 128, 2 layers) -> Linear."""

    def __init__(self):
        super().__init__()
        self.input = nn.Linear(16, 64)
        layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.output = nn.Linear(64, 10)

    def forward(self, x):
        return self.output(self.encoder(self.input(x)))


def tv(name, **train_kwargs):
    """A torchvision model, random init; train_kwargs only for the training export."""
    return lambda variant: getattr(torchvision.models, name)(
        weights=None, **(train_kwargs if variant == "train" else {}))


def plain(cls):
    return lambda variant: cls()


def image(size):
    return lambda: (torch.randn(1, 3, size, size),)


# name -> (builder, example inputs). All built and fed under torch.manual_seed(SEED).
MODELS = {
    "resnet18": (tv("resnet18"), image(64)),
    "mobilenet_v2": (tv("mobilenet_v2"), image(64)),
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), image(64)),
    "shufflenet_v2_x0_5": (tv("shufflenet_v2_x0_5"), image(64)),
    "densenet121": (tv("densenet121"), image(64)),
    # Stochastic depth draws a Bernoulli mask in training mode, which torch 1.13 cannot export
    # ("out parameter is not supported for bernoulli"). The training export sets its
    # probability to 0, which makes the block return its input unchanged: same parameters,
    # same graph otherwise.
    "efficientnet_b0": (tv("efficientnet_b0", stochastic_depth_prob=0.0), image(64)),
    "regnet_y_400mf": (tv("regnet_y_400mf"), image(64)),
    "convnext_tiny": (tv("convnext_tiny", stochastic_depth_prob=0.0), image(64)),
    "vit_small": (
        lambda variant: VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                  hidden_dim=64, mlp_dim=128, num_classes=10),
        image(32),
    ),
    "dcgan_generator": (plain(DcganGenerator), lambda: (torch.randn(1, 16, 1, 1),)),
    "lstm_embedding": (plain(LstmTagger), lambda: (torch.randint(0, 100, (8, 1)),)),
    "bigru": (plain(BiGru), lambda: (torch.randn(1, 8, 16),)),
    "transformer_encoder": (plain(TransformerEncoderModel), lambda: (torch.randn(8, 1, 16),)),
}

# Variants a model cannot be exported in, with the reason (none so far).
SKIP_VARIANTS = {}

VARIANTS = ("eval", "train")


# --- export ------------------------------------------------------------------------------

def export(name, variant, path):
    builder, inputs = MODELS[name]
    torch.manual_seed(SEED)
    model = builder(variant)
    args = inputs()
    kwargs = dict(opset_version=OPSET, export_params=True, keep_initializers_as_inputs=False,
                  input_names=["input"], output_names=["output"])
    if variant == "eval":
        model.eval()
    else:
        model.train()
        kwargs.update(training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    # Tracing in training mode runs the forward pass (dropout, batch statistics): seed it too.
    torch.manual_seed(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, path, **kwargs)
    return model


# --- torch tensor -> ONNX initializer ----------------------------------------------------

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
               onnx.TensorProto.BFLOAT16)


def torch_tensors(model):
    """Float parameters and buffers, named_parameters then named_buffers order."""
    out = []
    for n, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point():
            out.append((n, t.detach().cpu().numpy()))
    return out


def fans(arr):
    if arr.ndim < 2:
        return None, None
    return [int(v) for v in nn.init._calculate_fan_in_and_fan_out(torch.from_numpy(arr))]


def relation(arr, v):
    """How ONNX values v hold torch values arr: "same", "transposed" (a Linear weight exported
    for MatMul), "scaled (BatchNorm folded in)" (one factor near 1: an initial BatchNorm,
    gamma / sqrt(1 + eps), folded into a Conv weight), or None."""
    if v.shape == arr.shape and np.array_equal(v, arr):
        return "same"
    if arr.ndim == 2 and v.shape == arr.T.shape and np.array_equal(v, arr.T):
        return "transposed"
    if v.shape == arr.shape and arr.size and np.any(arr):
        s = float(np.vdot(v, arr) / np.vdot(arr, arr))
        if 0.9 < s < 1.1 and s != 1.0 and np.allclose(v, s * arr, rtol=1e-5, atol=1e-7):
            return "scaled (BatchNorm folded in)"
    return None


def is_constant_valued(arr):
    return arr.size == 0 or bool(np.all(arr == arr.flat[0]))


def unqualified(name):
    """torch.onnx's scope name for a module: its last non-numeric atom and what follows."""
    atoms = name.split(".")
    for i in range(len(atoms) - 1, -1, -1):
        if not atoms[i].isnumeric():
            return ".".join(atoms[i:])
    return name


class ScopeIndex:
    """Finds the module a node was exported from: torch 1.13 names nodes by the scopes of the
    modules called on the way to them, /encoder/layers.0/linear1/MatMul, one scope per called
    module (a ModuleList that is only iterated adds none)."""

    def __init__(self, model):
        self.modules = dict(model.named_modules())
        self.chains = {}
        for q in self.modules:
            if not q:
                continue
            atoms = q.split(".")
            self.chains[q] = [unqualified(".".join(atoms[:i])) for i in range(1, len(atoms) + 1)]

    def module_of(self, node_name):
        segments = [s for s in node_name.split("/")[:-1] if s]
        if not segments:
            return None
        exact = [q for q, chain in self.chains.items() if chain == segments]
        if exact:
            return exact[0] if len(exact) == 1 else None
        found = []
        for q, chain in self.chains.items():
            if chain[0] != segments[0] or chain[-1] != segments[-1]:
                continue
            it = iter(chain)
            if all(any(c == s for c in it) for s in segments):
                found.append(q)
        return found[0] if len(found) == 1 else None


def node_roles(mod, node, constant):
    """{input index: parameter name relative to mod} for a node exported from module mod;
    constant(i) tells whether input i is an initializer (or an Identity of one)."""
    t = node.op_type
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d)
    consts = [i for i in range(len(node.input)) if constant(i)]
    if isinstance(mod, convs) and t in ("Conv", "ConvTranspose"):
        return {1: "weight", 2: "bias"}
    if isinstance(mod, nn.Linear):
        if t == "Gemm":
            return {1: "weight", 2: "bias"}
        if t == "MatMul":
            return {1: "weight"}
        if t == "Add":
            return {i: "bias" for i in consts}
    if isinstance(mod, nn.modules.batchnorm._BatchNorm) and t == "BatchNormalization":
        return {1: "weight", 2: "bias", 3: "running_mean", 4: "running_var"}
    if isinstance(mod, nn.LayerNorm) and t == "LayerNormalization":
        return {1: "weight", 2: "bias"}
    if isinstance(mod, nn.Embedding) and t == "Gather":
        return {0: "weight"}
    if isinstance(mod, nn.MultiheadAttention):
        if t == "Gemm":
            return {1: "out_proj.weight", 2: "out_proj.bias"}
        if t == "MatMul":
            return {i: "in_proj_weight" for i in consts}
        if t == "Add":
            return {i: "in_proj_bias" for i in consts}
    if type(mod).__name__ == "CNBlock" and t == "Mul":
        return {i: "layer_scale" for i in consts}
    return {}


def map_eval(graph, model, tensors):
    """torch name -> (ONNX initializer or None, how it was found or why there is none)."""
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer
             if t.data_type in FLOAT_TYPES}
    identity_of = {n.output[0]: n.input[0] for n in graph.node
                   if n.op_type == "Identity" and n.input[0] in inits}
    arrays = dict(tensors)
    scopes = ScopeIndex(model)

    # What the nodes exported from each module consume, by the module's parameter roles.
    by_scope = {}  # torch name -> (graph tensor, node name, input index)
    rnn_inputs = {}  # torch name -> graph tensors of the RNN node
    rnn_seen = {}
    for node in graph.node:
        q = scopes.module_of(node.name)
        if q is None:
            continue
        mod = scopes.modules[q]
        if isinstance(mod, nn.RNNBase) and node.op_type in ("LSTM", "GRU", "RNN"):
            layer = rnn_seen.get(q, 0)
            rnn_seen[q] = layer + 1
            for suffix in ("", "_reverse"):
                for kind, i in (("weight_ih", 1), ("weight_hh", 2), ("bias_ih", 3), ("bias_hh", 3)):
                    rnn_inputs[f"{q}.{kind}_l{layer}{suffix}"] = (node.input[i], node.name,
                                                                 node.op_type)
            continue

        def constant(i):
            return i < len(node.input) and (node.input[i] in inits or node.input[i] in identity_of)

        for i, rel in node_roles(mod, node, constant).items():
            tname = f"{q}.{rel}"
            if i < len(node.input) and node.input[i] and tname in arrays and tname not in by_scope:
                by_scope[tname] = (node.input[i], node.name, i)

    bn_nodes = {scopes.module_of(n.name) for n in graph.node if n.op_type == "BatchNormalization"}
    out = {}
    for tname, arr in tensors:
        owner = tname.rsplit(".", 1)[0]
        mod = scopes.modules.get(owner)
        if tname in inits:
            out[tname] = (tname, "by name")
        elif tname in rnn_inputs:
            g, node, op = rnn_inputs[tname]
            if g in inits:
                out[tname] = (g, f"gates reordered into input '{g}' of {op} '{node}'")
            else:
                out[tname] = (None, f"{op} '{node}' reads it from '{g}', not an initializer")
        elif tname in by_scope:
            g, node, i = by_scope[tname]
            if g in inits:
                how = relation(arr, inits[g])
                if how:
                    out[tname] = (g, f"input {i} of '{node}', values {how}")
                else:
                    out[tname] = (None, f"input {i} of '{node}' is '{g}' whose values differ")
            elif g in identity_of:
                out[tname] = (None, f"input {i} of '{node}' is '{g}' = Identity of initializer "
                                    f"'{identity_of[g]}': the exporter shared tensors with "
                                    f"equal values")
            else:
                out[tname] = (None, f"input {i} of '{node}' is '{g}', not an initializer")
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and owner not in bn_nodes:
            out[tname] = (None, "BatchNorm folded into the preceding Conv")
        else:
            hits = [(g, h) for g, v in inits.items()
                    if not is_constant_valued(arr) for h in [relation(arr, v)] if h]
            if len(hits) == 1:
                out[tname] = (hits[0][0], f"by values: {hits[0][1]}")
            elif hits:
                out[tname] = (None, "values found in several initializers: " +
                              ", ".join(h[0] for h in hits))
            else:
                out[tname] = (None, "not found by name, node scope or values")
    return out


def map_train(graph, tensors):
    names = {t.name for t in graph.initializer}
    return {tname: (tname, "by name") if tname in names else
            (None, "not an initializer of the training export") for tname, _ in tensors}


# --- zero, compress, describe ------------------------------------------------------------

def zero_initializers(model):
    for t in model.graph.initializer:
        if t.data_type not in FLOAT_TYPES:
            continue
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise RuntimeError(f"{t.name}: external data is not expected from torch.onnx")
        if t.HasField("raw_data"):
            t.raw_data = bytes(len(t.raw_data))
        elif len(t.float_data):
            t.float_data[:] = [0.0] * len(t.float_data)
        elif len(t.double_data):
            t.double_data[:] = [0.0] * len(t.double_data)
        elif len(t.int32_data):  # FLOAT16/BFLOAT16 bit patterns
            t.int32_data[:] = [0] * len(t.int32_data)


def write_gzip(path, data):
    buf = io.BytesIO()
    # No file name and mtime 0 in the header: the same model gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def build_one(name, variant, out_dir, tmp):
    onnx_path = os.path.join(tmp, f"{name}.{variant}.onnx")
    t0 = time.time()
    model = export(name, variant, onnx_path)
    seconds = time.time() - t0
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto)
    tensors = torch_tensors(model)
    if variant == "eval":
        mapping = map_eval(proto.graph, model, tensors)
    else:
        mapping = map_train(proto.graph, tensors)

    entries = []
    for tname, arr in tensors:
        fan_in, fan_out = fans(arr)
        onnx_name, how = mapping[tname]
        entry = {"torch": tname, "shape": list(arr.shape), "fan_in": fan_in, "fan_out": fan_out,
                 "onnx": onnx_name}
        entry["how" if onnx_name else "why_not"] = how
        entries.append(entry)
    # Float initializers that are no torch tensor (the eval export's folded BatchNorm shifts):
    # zeroed like the rest; listed so every initializer is accounted for.
    mapped = {e["onnx"] for e in entries if e["onnx"]}
    users = {}
    for node in proto.graph.node:
        for i, inp in enumerate(node.input):
            users.setdefault(inp, f"input {i} of {node.op_type} '{node.name}'")
    others = [{"onnx": t.name, "shape": list(t.dims), "used_as": users.get(t.name, "unused")}
              for t in proto.graph.initializer
              if t.data_type in FLOAT_TYPES and t.name not in mapped]
    doc = {
        "model": name,
        "variant": variant,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "opset": OPSET,
        "inputs": [list(a.shape) for a in MODELS[name][1]()],
        "tensors": entries,
        "other_float_initializers": others,
    }

    zero_initializers(proto)
    base = os.path.join(out_dir, f"{name}.{variant}")
    write_gzip(base + ".onnx.gz", proto.SerializeToString())
    with open(base + ".params.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{name}.{variant}: {len(proto.graph.node)} nodes, {len(entries)} torch tensors "
          f"({len(mapped)} initializers), export {seconds:.1f}s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", choices=sorted(MODELS),
                    help="export only this model (repeatable)")
    ap.add_argument("--out", default=HERE, help="output folder (default: beside this script)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic kernels and a fair export time
    names = args.only or list(MODELS)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for variant in VARIANTS:
                if (name, variant) in SKIP_VARIANTS:
                    print(f"{name}.{variant}: skipped: {SKIP_VARIANTS[name, variant]}")
                    continue
                build_one(name, variant, args.out, tmp)
    print(f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
