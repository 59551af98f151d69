"""reinit on real exported architectures: the corpus in models/corpus/ (export.py).

For every <name>.<variant>.onnx.gz there, with its .params.json:
  (a) every torch parameter/buffer that became an ONNX initializer is in the plan (as some
      layer's weight, bias or params entry, planned or skipped);
  (b) every planned Conv/ConvTranspose/Gemm/MatMul layer whose weight is a torch parameter
      of rank >= 2 has torch's fan_in/fan_out under --fan-convention torch;
  (c) every expected.tsv row matches at least one layer, every layer it matches is planned
      with the expected activation (not flagged ambiguous with another kind, unless the
      row's note starts with "ambiguous"), and every Conv/ConvTranspose/Gemm/MatMul node of the
      graph it names (by node name, or by the initializer its weight comes from through
      Identity/Transpose) is a layer of the plan;
  (d) `reinit M --scheme auto -o OUT` exits 0, OUT passes the ONNX checker (full check), its
      graph is unchanged and every initializer the plan does not rewrite is byte-identical.
Failures of (a)-(c) listed in known_gaps.tsv are reported as known gaps; an unlisted failure
fails the test, and so does a listed gap that no longer occurs (delete its line).

Usage: corpus_test.py REINIT_BINARY SOURCE_DIR. Needs onnx and numpy (the venv) (not torch);
exits 77 (skipped) without them.
"""

import fnmatch
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import numpy  # noqa: F401  (onnx.numpy_helper needs it)
    import onnx
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
NON_WEIGHT_OPS = ("BatchNormalization", "LayerNormalization", "InstanceNormalization",
                  "GroupNormalization", "Gather", "LSTM", "GRU", "RNN")
CHECKS = ("activation", "ambiguous", "skipped", "unmatched", "missing", "in_plan", "fans")


def read_tsv(path, min_cols):
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < min_cols:
                raise SystemExit(f"{path}:{lineno}: expected {min_cols} tab-separated columns")
            rows.append((lineno, cols))
    return rows


class Failure:
    """One unmet expectation. key identifies what a known_gaps.tsv row must name."""

    def __init__(self, model, variant, check, key, layer, expected, got, path=""):
        self.model, self.variant, self.check, self.key = model, variant, check, key
        self.layer, self.expected, self.got, self.path = layer, expected, got, path
        self.gap = None  # the known_gaps.tsv row that excuses it


def run(args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def plan_of(reinit, model_path):
    r = run([reinit, "inspect", model_path, "--json", "--fan-convention", "torch"])
    if r.returncode != 0:
        raise RuntimeError(f"reinit inspect {model_path} exited {r.returncode}:\n{r.stderr}")
    return json.loads(r.stdout)


def is_weight_layer(layer):
    """Conv/Gemm/MatMul layers and loose tensors (a weight reinit does not place), not the
    normalization, embedding and recurrent layers, which have no expected.tsv rows."""
    return (layer.get("op") not in NON_WEIGHT_OPS and
            layer.get("kind", "") not in ("norm", "embedding", "recurrent"))


def layer_names(layer):
    return [layer.get("name", ""), layer.get("weight", {}).get("name", "")]


def plan_tensors(layer):
    names = set()
    for field in ("weight", "bias"):
        if layer.get(field, {}).get("name"):
            names.add(layer[field]["name"])
    names.update(p["name"] for p in layer.get("params", []) if p.get("name"))
    return names


def weight_sources(graph):
    """Weight-op node -> (its weight input, the initializer it comes from through Identity and
    Transpose, or None, and the Transpose it passes if any)."""
    inits = {t.name for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    out = {}
    for n in graph.node:
        if n.op_type not in WEIGHT_OPS or len(n.input) < 2:
            continue
        name, transpose = n.input[1], None
        while name not in inits and name in producer and \
                producer[name].op_type in ("Identity", "Transpose"):
            if producer[name].op_type == "Transpose":
                transpose = producer[name].name
            name = producer[name].input[0]
        out[n.name] = (n.input[1], name if name in inits else None, transpose)
    return out


def check_plan(model, variant, plan, params, expected, graph, failures, problems, stats):
    """(a)-(c): appends Failures (may be known gaps) and problems (corpus errors)."""
    layers = plan.get("layers", [])
    sources = weight_sources(graph)
    layer_names_set = {layer.get("name") for layer in layers}
    weights_in_plan = {layer.get("weight", {}).get("name") for layer in layers}
    in_plan = set()
    for layer in layers:
        in_plan |= plan_tensors(layer)

    # (a) every torch tensor that is an initializer appears in the plan
    for t in params["tensors"]:
        if not t["onnx"]:
            continue
        stats["in_plan"] += 1
        if t["onnx"] not in in_plan:
            failures.append(Failure(model, variant, "in_plan", t["torch"], t["onnx"],
                                    "in the plan", "absent"))

    # (b) fans of planned weight layers against torch's
    by_onnx = {}
    for t in params["tensors"]:
        if t["onnx"] and len(t["shape"]) >= 2:
            by_onnx.setdefault(t["onnx"], []).append(t)
    for layer in layers:
        if layer.get("op") not in WEIGHT_OPS or layer.get("skipped"):
            continue
        for t in by_onnx.get(layer.get("weight", {}).get("name"), []):
            stats["fans"] += 1
            got = (layer.get("fanIn", 0), layer.get("fanOut", 0))
            want = (t["fan_in"], t["fan_out"])
            if got != want:
                failures.append(Failure(model, variant, "fans", layer["name"], layer["name"],
                                        f"{want[0]:g}/{want[1]:g} ({t['torch']})",
                                        f"{got[0]:g}/{got[1]:g}"))

    # expected.tsv itself: every weight node is named by a row, and no node by two rows that
    # disagree (a corpus error, not a reinit one)
    rows = [(glob, kind) for _, (m, v, glob, kind, *_) in expected if (m, v) == (model, variant)]
    for node, (weight, source, _) in sources.items():
        if source is None:
            continue  # a MatMul of two activations
        kinds = {kind for glob, kind in rows
                 if fnmatch.fnmatchcase(node, glob) or fnmatch.fnmatchcase(source, glob)}
        if len(kinds) != 1:
            problems.append(f"expected.tsv: {model}.{variant} node '{node}' (weight '{source}') "
                            f"is named by {len(kinds)} kinds of row: {sorted(kinds)}")

    # (c) expected activations
    for lineno, (m, v, glob, kind, *rest) in expected:
        if (m, v) != (model, variant):
            continue
        may_be_ambiguous = bool(rest) and rest[0].startswith("ambiguous")
        matched = [layer for layer in layers if is_weight_layer(layer) and
                   any(n and fnmatch.fnmatchcase(n, glob) for n in layer_names(layer))]
        # graph nodes the row names that the plan has no layer for
        for node, (weight, source, transpose) in sources.items():
            if node in layer_names_set:
                continue
            if not (fnmatch.fnmatchcase(node, glob) or
                    (source and fnmatch.fnmatchcase(source, glob))):
                continue
            if transpose and source in weights_in_plan:
                continue  # listed under its initializer's name, and matched below
            via = f"weight '{weight}'" + (f" from initializer '{source}'" if source and
                                          source != weight else "")
            failures.append(Failure(model, variant, "missing", glob, node, kind,
                                    f"not a layer of the plan ({via})"))
        if not matched:
            failures.append(Failure(model, variant, "unmatched", glob, glob, kind, "no layer"))
            continue
        for layer in matched:
            stats["activation"] += 1
            if layer.get("skipped"):
                failures.append(Failure(model, variant, "skipped", glob, layer["name"], kind,
                                        "skipped: " + layer["skipped"]))
                continue
            act = layer.get("activation", {})
            others = sorted({a.split(" ")[0] for a in act.get("alternatives", [])} - {kind})
            if act.get("kind") == kind and act.get("ambiguous") and others and \
                    not may_be_ambiguous:
                # right by the majority rule, but some path reaches another activation
                failures.append(Failure(model, variant, "ambiguous", glob, layer["name"], kind,
                                        f"{kind}, ambiguous: also {', '.join(others)}",
                                        " -> ".join(act.get("path", [])) + "  [also " +
                                        "; ".join(act.get("alternatives", [])) + "]"))
            if act.get("kind") != kind:
                path = " -> ".join(act.get("path", []))
                if act.get("ambiguous"):
                    path += f"  [ambiguous: also {', '.join(act.get('alternatives', []))}]"
                failures.append(Failure(model, variant, "activation", glob, layer["name"], kind,
                                        act.get("kind", "?"), path))


def untouched_equal(original, output, rewritten, copies):
    """Problems with output: graph changed, or an initializer outside `rewritten` changed.

    `copies` maps the tensors the plan gives a copy of their own (copyOf) to their originals:
    the only graph change allowed is each one's Identity node replaced by a new initializer.
    """
    problems = []
    kept_nodes = [n for n in original.graph.node
                  if not (n.op_type == "Identity" and list(n.output) and n.output[0] in copies)]
    if len(kept_nodes) != len(original.graph.node) - len(copies):
        problems.append("a copied tensor was not produced by an Identity node")
    if len(kept_nodes) != len(output.graph.node) or any(
            a.SerializeToString() != b.SerializeToString()
            for a, b in zip(kept_nodes, output.graph.node)):
        problems.append("the graph's nodes changed")
    before = {t.name: t for t in original.graph.initializer}
    after = {t.name: t for t in output.graph.initializer}
    for name, source in copies.items():
        if name not in after or source not in before:
            problems.append(f"copy '{name}' of '{source}' missing")
            continue
        a, b = after[name], before[source]
        if (list(a.dims), a.data_type, a.HasField("raw_data")) != (
                list(b.dims), b.data_type, b.HasField("raw_data")):
            problems.append(f"copy '{name}' differs from '{source}' in dims, type or storage")
        before[name] = b
    if set(before) != set(after):
        problems.append(f"initializer names changed: -{sorted(set(before) - set(after))[:5]} "
                        f"+{sorted(set(after) - set(before))[:5]}")
    for name, t in before.items():
        if name not in after:
            continue
        u = after[name]
        if name in rewritten:
            if (list(u.dims), u.data_type, u.HasField("raw_data")) != (
                    list(t.dims), t.data_type, t.HasField("raw_data")):
                problems.append(f"rewritten '{name}' changed dims, type or storage")
        elif t.SerializeToString() != u.SerializeToString():
            problems.append(f"'{name}' is not in the plan but changed")
    return problems


def check_run(reinit, model_path, original, out_path, plan):
    """(d) run reinit --scheme auto; returns a list of problems (hard failures)."""
    r = run([reinit, model_path, "--scheme", "auto", "-o", out_path])
    if r.returncode != 0:
        return [f"reinit --scheme auto exited {r.returncode}: {r.stderr.strip()[:500]}"]
    output = onnx.load(out_path)
    problems = []
    try:
        # A ModelProto, not a path: onnx 1.12's full_check on a path writes over the file.
        onnx.checker.check_model(output, full_check=True)
    except Exception as e:  # noqa: BLE001  (any checker error is the finding)
        problems.append(f"checker: {str(e)[:300]}")
    rewritten, copies = set(), {}
    for layer in plan.get("layers", []):
        if layer.get("skipped"):
            continue
        for t in [layer.get("weight", {}), layer.get("bias", {})] + layer.get("params", []):
            if t.get("name") and t.get("scheme", "keep") not in ("keep", ""):
                rewritten.add(t["name"])
                if t.get("copyOf"):
                    copies[t["name"]] = t["copyOf"]
    problems += untouched_equal(original, output, rewritten, copies)
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    reinit, source = sys.argv[1], sys.argv[2]
    corpus = os.path.join(source, "models", "corpus")
    expected = read_tsv(os.path.join(corpus, "expected.tsv"), 4)
    gaps = read_tsv(os.path.join(corpus, "known_gaps.tsv"), 5)
    hard = []
    for lineno, cols in gaps:
        if cols[3] not in CHECKS:
            hard.append(f"known_gaps.tsv:{lineno}: check '{cols[3]}' is not one of {CHECKS}")

    models = sorted(f[:-len(".onnx.gz")] for f in os.listdir(corpus) if f.endswith(".onnx.gz"))
    if not models:
        print(f"no models in {corpus}: run models/corpus/export.py")
        return 1
    present = {tuple(m.rsplit(".", 1)) for m in models}
    for lineno, (m, v, *_) in expected:
        if (m, v) not in present:
            hard.append(f"expected.tsv:{lineno}: no model {m}.{v}.onnx.gz")

    failures = []
    counts = []
    stats = {"in_plan": 0, "fans": 0, "activation": 0}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for base in models:
            model, variant = base.rsplit(".", 1)
            path = os.path.join(tmp, base + ".onnx")
            with gzip.open(os.path.join(corpus, base + ".onnx.gz"), "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data)
            with open(os.path.join(corpus, base + ".params.json")) as f:
                params = json.load(f)
            try:
                plan = plan_of(reinit, path)
            except RuntimeError as e:
                hard.append(f"{base}: {e}")
                continue
            layers = plan.get("layers", [])
            weight_layers = [l for l in layers if l.get("op") in WEIGHT_OPS]
            counts.append((base, sum(1 for l in layers if not l.get("skipped")),
                           sum(1 for l in layers if l.get("skipped")),
                           sum(1 for l in weight_layers if not l.get("skipped")),
                           sum(1 for l in weight_layers if l.get("skipped"))))
            original = onnx.load_model_from_string(data)
            check_plan(model, variant, plan, params, expected, original.graph, failures, hard,
                       stats)
            for p in check_run(reinit, path, original, os.path.join(tmp, base + ".out.onnx"),
                               plan):
                hard.append(f"{base}: {p}")

    # Known gaps: a row (model, variant, layer_match, check, reason) excuses the failures of
    # that check whose key is layer_match (the expected.tsv glob for activation/skipped/
    # unmatched) or matches it as a glob (torch name for in_plan, layer name for fans).
    used = set()
    for f in failures:
        for lineno, (m, v, match, check, reason, *_) in gaps:
            if (m, v, check) != (f.model, f.variant, f.check):
                continue
            exact = check in ("activation", "ambiguous", "skipped", "unmatched", "missing")
            if (f.key == match) if exact else fnmatch.fnmatchcase(f.key, match):
                f.gap = (lineno, reason)
                used.add(lineno)
                break

    print(f"{'model.variant':34} {'layers planned':>14} {'skipped':>8}   "
          f"{'weight layers planned':>21} {'skipped':>8}")
    for base, p, s, wp, ws in counts:
        print(f"{base:34} {p:>14} {s:>8}   {wp:>21} {ws:>8}")
    print(f"checked: {stats['in_plan']} torch tensors in the plan, {stats['fans']} fans, "
          f"{stats['activation']} expected activations ({time.time() - t0:.1f}s)\n")

    def table(title, rows):
        if not rows:
            return
        print(title)
        print(f"  {'model.variant':28} {'check':10} {'layer':60} {'expected':14} got / path")
        for f in rows:
            print(f"  {f.model + '.' + f.variant:28} {f.check:10} {f.layer:60} "
                  f"{f.expected:14} {f.got}")
            if f.path:
                print(f"  {'':28} {'':10} {'':60} {'':14} path: {f.path}")
        print()

    known = [f for f in failures if f.gap]
    unknown = [f for f in failures if not f.gap]
    if known:
        print("known gaps (known_gaps.tsv):")
        by_gap = {}
        for f in known:
            by_gap.setdefault(f.gap, []).append(f)
        for (lineno, reason), fs in sorted(by_gap.items()):
            f = fs[0]
            print(f"  line {lineno}: {f.model}.{f.variant} {f.check} {f.key}: {len(fs)} "
                  f"layer(s) — {reason}")
        print()
    table("UNEXPECTED failures (fix reinit, or list them in known_gaps.tsv with a reason):",
          unknown)
    stale = [(lineno, cols) for lineno, cols in gaps if lineno not in used]
    for lineno, cols in stale:
        print(f"known_gaps.tsv:{lineno}: no longer fails ({' '.join(cols[:4])}): delete the line")
    for h in hard:
        print("FAIL:", h)
    ok = not unknown and not stale and not hard
    print("\ncorpus:", "OK" if ok else "FAILED",
          f"({len(models)} models, {len(known)} known-gap failures, {len(unknown)} unexpected, "
          f"{len(stale)} stale gaps, {len(hard)} hard failures)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
