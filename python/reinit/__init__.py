"""reinit from Python: the library the `reinit` tool is built on, bound thinly.

A model is a path (str or os.PathLike: the file-based runs, streamed, external data, atomic
output), bytes, or an onnx.ModelProto (serialized and run in memory). Options are the tool's long
flags with `_` for `-` (fan_convention="torch", layers={"fc*": "xavier-uniform"}, ...); see
docs/python.md. A bad option or value raises ValueError, naming the valid ones; a model
that cannot be processed raises reinit.Error with the tool's message (what it prints after
"reinit: error: "). The tool's warnings are issued as ReinitWarning.
"""

import json
import os
import warnings

from . import _reinit

__all__ = ["Error", "ReinitWarning", "plan", "reinit", "propagate", "export", "schemes"]
__version__ = _reinit.version

Error = _reinit.Error
Error.__module__ = __name__


class ReinitWarning(UserWarning):
    """What the tool prints as 'reinit: warning: ...'."""


def _model(model):
    """(the extension's model argument, its name in messages, its kind)."""
    if isinstance(model, (str, os.PathLike)):
        return os.fsdecode(model), None, "path"
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<bytes>", "bytes"
    if hasattr(model, "SerializeToString"):
        import onnx  # only when given one

        if isinstance(model, onnx.ModelProto):
            return model.SerializeToString(), "<ModelProto>", "proto"
    raise TypeError("model must be a path, bytes or an onnx.ModelProto, not "
                    + type(model).__name__)


def _warn(messages):
    for m in messages:
        warnings.warn(m, ReinitWarning, stacklevel=3)


def _plan_or_options(plan, scheme, seed, options):
    """(the plan's JSON text or None, the options with scheme and seed unless a plan is given)."""
    if plan is None:
        return None, {"scheme": scheme, "seed": seed, **options}
    if scheme != "auto" or seed != 0:
        raise ValueError("plan= cannot be combined with scheme= or seed=: the plan sets it "
                         "(edit the plan instead)")
    return (plan if isinstance(plan, str) else json.dumps(plan)), options


def plan(model, scheme="auto", seed=0, **options):
    """The plan, as `reinit inspect --json` prints it (a dict); nothing is drawn."""
    arg, name, _ = _model(model)
    text = _reinit.plan(arg, name or "", {"scheme": scheme, "seed": seed, **options})
    return json.loads(text)


def reinit(model, scheme="auto", seed=0, plan=None, output=None, return_plan=False, **options):
    """Re-initializes the model as `reinit MODEL --scheme S --seed N` does, with the same bytes.

    Returns an onnx.ModelProto for a ModelProto, bytes for bytes, and for a path the path
    written (`output`, default MODEL.reinit.onnx beside it). `plan` is a plan to apply instead
    of planning (a dict from plan(), possibly edited, or its JSON text: the tool's --plan); it
    cannot be combined with the options that shape a plan. With return_plan=True the result is
    (model or path, the plan applied as a dict).
    """
    arg, name, kind = _model(model)
    plan_json, options = _plan_or_options(plan, scheme, seed, options)
    if output is not None:
        output = os.fsdecode(output)
    out, applied, messages = _reinit.reinit(arg, name or "", options, plan_json, output)
    _warn(messages)
    if kind == "proto":
        import onnx

        out = onnx.ModelProto.FromString(out)
    return (out, json.loads(applied)) if return_plan else out


def propagate(model, scheme=None, seed=0, batch=None, inputs=None, joins=False, **options):
    """Per-layer moments of random inputs through the model, as `reinit inspect --propagate`.

    scheme=None: the model as it is (the tool's inspect --propagate); a scheme: the model
    re-initialized in memory first under it (seed and options as reinit() takes them; the
    same seed draws the inputs). batch: the samples (default 8, 32 for lsuv); inputs:
    {name: shape} for symbolic dims. Returns a dict of equal-length numpy arrays, one entry
    per layer in the order they ran: layer, op, activation (str, dtype object), mean_before,
    std_before, mean_after, std_after (float64; before and after the layer's activation).
    With joins=True, (that dict, a dict per residual join: stream, join, branch, mean, std,
    after_layers).
    """
    import numpy as np

    arg, name, _ = _model(model)
    options = {"seed": seed, "batch": batch, "inputs": inputs, **options}
    if scheme is not None:
        options["scheme"] = scheme
    layers, join_rows, _ = _reinit.propagate(arg, name or "", options, scheme is not None)

    def columns(rows, text):
        return {k: np.array(v, dtype=object if k in text else
                            np.int64 if k == "branch" else np.float64)
                for k, v in rows.items()}

    table = columns(layers, ("layer", "op", "activation"))
    if not joins:
        return table
    return table, columns(join_rows, ("stream", "join"))


# ONNX data type -> numpy dtype of the exported tensors (BFLOAT16 is widened to float32).
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
           7: "int64", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}


def _array(data_type, shape, data):
    import numpy as np

    if data_type == 16:  # BFLOAT16: the high half of a float32
        wide = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return wide.view(np.float32).reshape(shape)
    if data_type not in _DTYPES:
        raise Error(f"exported tensor of ONNX data type {data_type} has no numpy dtype")
    return np.frombuffer(data, dtype=np.dtype(_DTYPES[data_type]).newbyteorder("<")) \
        .reshape(shape).copy()


def export(model, names="onnx", output=None, format=None, as_is=False, scheme="auto", seed=0,
           plan=None, **options):
    """The re-initialized parameters under a framework's names, as `reinit export` writes them.

    Plans and applies in memory exactly as reinit() with the same scheme, seed and options
    (or applies `plan`, or with as_is=True takes the values as they are), then names every
    parameter: names="onnx" (initializer names), "torch" (state_dict keys, in PyTorch's
    layouts) or "keras" (tf2onnx models). Returns (tensors, sidecar): tensors a dict name ->
    numpy array in the file's order, sidecar the dict of `FILE.json` (each tensor's source,
    layer, scheme, std/bound, transform; `unmapped`: what got no name, and why). With
    output="FILE.safetensors" or "FILE.npz" (or format=), also writes the file and its sidecar
    FILE.json, both or neither, as the tool does.
    """
    arg, name, _ = _model(model)
    plan_json, options = _plan_or_options(plan, scheme, seed, options)
    if output is not None:
        output = os.fsdecode(output)
    rows, sidecar, _, messages, _ = _reinit.export(arg, name or "", options, names, as_is,
                                                   plan_json, output, format or "")
    _warn(messages)
    tensors = {n: _array(t, shape, data) for n, t, shape, data in rows}
    return tensors, json.loads(sidecar)


def schemes():
    """The scheme registry: a list of {name, formula, kind, distribution, mode, uses_gain}."""
    return _reinit.schemes()
