#!/usr/bin/python3
"""The residual structure reinit finds against models/expected_structure.tsv.

For every model of that file (the sample models of models/, deeper variants written by
models/generate.py --blocks N into a temporary folder, and the corpus of models/corpus/, gunzipped
into it) runs `REINIT inspect MODEL --json` and checks the plan's residual streams:

  model rows: the number of streams (plan `streams`), their branch counts (each stream's
    `branches`, sorted; and each stream must list as many `joins`), the number of joins whose
    `skip` is "projected", and the set of the streams' `normalization`;
  layer rows: every Conv/ConvTranspose/Gemm/MatMul layer of the plan whose name or weight name
    the glob matches (at least one must) has `residual.position` (a layer without `residual` is
    position "none"), and where given `residual.layersInBranch` (m) and `residual.branches` (L),
    the latter equal to the `branches` of the stream `residual.stream` names.

Every mismatch is printed with the model, what was expected and what the plan says; all are
collected before the test fails. Exit 0 when every row holds, 1 otherwise, 77 (skipped) without
onnx (the venv).

Usage: expected_structure_test.py REINIT_BINARY SOURCE_DIR
"""

import fnmatch
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import onnx  # noqa: F401  (generate.py needs it; its absence skips the test)
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
POSITIONS = ("first", "inner", "last", "only", "projected_skip", "none")
NORMALIZATIONS = ("none", "pre_norm", "post_norm", "in_branch", "unknown")
COLUMNS = ["model", "variant", "layer", "streams", "branches", "projected", "normalization",
           "position", "m", "L", "note"]


def read_rows(path):
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if cols[:3] == COLUMNS[:3]:
                continue  # the header line
            if len(cols) < len(COLUMNS) - 1:
                raise SystemExit(f"{path}:{lineno}: expected {len(COLUMNS)} tab-separated "
                                 f"columns, got {len(cols)}")
            row = dict(zip(COLUMNS, cols + [""] * (len(COLUMNS) - len(cols))))
            row["lineno"] = lineno
            rows.append(row)
    return rows


class Checker:
    def __init__(self):
        self.passed = 0
        self.failures = []  # (where, what, expected, got)

    def row(self, where, problems):
        """problems: list of (what, expected, got); empty when the row holds."""
        if problems:
            self.failures += [(where,) + p for p in problems]
        else:
            self.passed += 1


def as_int(v):
    """protobuf JSON writes int64 as a string, int32 as a number."""
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class Models:
    """Finds (and where needed makes) the model file of a (model, variant) pair."""

    def __init__(self, source, tmp):
        self.source, self.tmp = source, tmp
        self.made = {}

    def path(self, model, variant):
        key = (model, variant)
        if key in self.made:
            return self.made[key]
        if model.endswith(".onnx"):
            if variant == "-":
                path = os.path.join(self.source, "models", model)
            elif variant.startswith("blocks="):
                out = os.path.join(self.tmp, "gen-" + variant.replace("=", "-"))
                os.makedirs(out, exist_ok=True)
                name = model[:-len(".onnx")]
                r = subprocess.run(
                    [sys.executable, os.path.join(self.source, "models", "generate.py"),
                     "--only", name, "--blocks", variant.split("=", 1)[1], "--out", out],
                    capture_output=True, text=True, timeout=300)
                if r.returncode != 0:
                    raise RuntimeError(f"generate.py --only {name} --{variant} exited "
                                       f"{r.returncode}:\n{r.stderr}")
                path = os.path.join(out, model)
            else:
                raise RuntimeError(f"unknown variant {variant!r} of a sample model")
        else:
            gz = os.path.join(self.source, "models", "corpus", f"{model}.{variant}.onnx.gz")
            path = os.path.join(self.tmp, f"{model}.{variant}.onnx")
            with gzip.open(gz, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        self.made[key] = path
        return path


def inspect(reinit, path):
    r = subprocess.run([reinit, "inspect", path, "--json"], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"reinit inspect exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"reinit inspect --json printed no JSON ({e})")


def check_model_row(plan, row):
    problems = []
    if "streams" not in plan:
        return [("streams", "a 'streams' field in the plan", "no 'streams' field")]
    streams = plan["streams"]
    if not isinstance(streams, list):
        return [("streams", "a list", repr(streams)[:200])]
    bad = [s.get("name", i) for i, s in enumerate(streams)
           if not isinstance(s, dict) or as_int(s.get("branches")) is None]
    if bad:
        problems.append(("streams", "every stream with 'branches'", f"none in {bad}"))
    if row["streams"] != "-" and len(streams) != int(row["streams"]):
        problems.append(("number of streams", row["streams"], str(len(streams))))
    counts = sorted(as_int(s.get("branches")) or 0 for s in streams if isinstance(s, dict))
    if row["branches"] != "-":
        want = sorted(int(x) for x in row["branches"].split(","))
        if counts != want:
            problems.append(("branches per stream", ",".join(map(str, want)),
                             ",".join(map(str, counts)) or "(no streams)"))
    projected = 0
    for i, s in enumerate(streams):
        if not isinstance(s, dict):
            continue
        name = s.get("name", f"#{i}")
        joins = s.get("joins")
        if not isinstance(joins, list):
            problems.append((f"stream {name} joins", "a 'joins' list", "no 'joins' field"))
            continue
        if as_int(s.get("branches")) is not None and len(joins) != as_int(s["branches"]):
            problems.append((f"stream {name}", f"{s['branches']} joins (its 'branches')",
                             f"{len(joins)} joins"))
        for j in joins:
            skip = j.get("skip") if isinstance(j, dict) else None
            if skip not in ("direct", "projected"):
                problems.append((f"stream {name} join {j.get('node') if isinstance(j, dict) else j}",
                                 "skip direct|projected", repr(skip)))
            projected += skip == "projected"
    if row["projected"] != "-" and projected != int(row["projected"]):
        problems.append(("projected skips", row["projected"], str(projected)))
    if row["normalization"] != "-":
        want = set(row["normalization"].split(","))
        got = {s.get("normalization", "(missing)") if isinstance(s, dict) else "(bad)"
               for s in streams}
        if got != want:
            problems.append(("normalization", ",".join(sorted(want)),
                             ",".join(sorted(got)) or "(no streams)"))
        unknown = got - set(NORMALIZATIONS)
        if unknown:
            problems.append(("normalization values", "|".join(NORMALIZATIONS),
                             ",".join(sorted(unknown))))
    return problems


def weight_layers(plan):
    return [l for l in plan.get("layers", []) if l.get("op") in WEIGHT_OPS]


def check_layer_row(plan, row):
    glob = row["layer"]
    matched = [l for l in weight_layers(plan)
               if fnmatch.fnmatchcase(l.get("name", ""), glob)
               or fnmatch.fnmatchcase((l.get("weight") or {}).get("name", ""), glob)]
    if not matched:
        return [(f"layer {glob}", "at least one Conv/ConvTranspose/Gemm/MatMul layer matching",
                 "none")]
    streams = {s.get("name"): s for s in plan.get("streams", []) if isinstance(s, dict)}
    problems = []
    for l in matched:
        name = l.get("name", "?")
        res = l.get("residual")
        if res is None:
            if row["position"] not in ("-", "none") or row["m"] != "-" or row["L"] != "-":
                problems.append((f"layer {name}", f"position {row['position']}",
                                 "no 'residual' field"))
            continue
        if not isinstance(res, dict):
            problems.append((f"layer {name}", "a 'residual' object", repr(res)[:200]))
            continue
        pos = res.get("position", "(missing)")
        if row["position"] != "-" and pos != row["position"]:
            problems.append((f"layer {name} position", row["position"], pos))
        elif pos not in POSITIONS:
            problems.append((f"layer {name} position", "|".join(POSITIONS), pos))
        if row["m"] != "-":
            m = as_int(res.get("layersInBranch"))
            if m != int(row["m"]):
                problems.append((f"layer {name} layersInBranch", row["m"],
                                 "(missing)" if m is None else str(m)))
        if row["L"] != "-":
            L = as_int(res.get("branches"))
            if L != int(row["L"]):
                problems.append((f"layer {name} branches", row["L"],
                                 "(missing)" if L is None else str(L)))
        if pos not in ("none", "(missing)"):
            stream = res.get("stream")
            if stream not in streams:
                problems.append((f"layer {name} stream", "a stream of the plan's 'streams'",
                                 repr(stream)))
            elif as_int(streams[stream].get("branches")) != as_int(res.get("branches")):
                problems.append((f"layer {name} branches",
                                 f"{streams[stream].get('branches')} (stream {stream})",
                                 str(res.get("branches"))))
    return condense(problems)


def condense(problems, shown=3):
    """Layer problems of one row that differ only in the layer: one line, a few names."""
    groups = {}
    for what, expected, got in problems:
        layer, _, field = what.partition(" ")[2].partition(" ")
        key = (field, expected, got)
        groups.setdefault(key, []).append(layer)
    out = []
    for (field, expected, got), layers in groups.items():
        names = ", ".join(layers[:shown]) + (f" and {len(layers) - shown} more"
                                              if len(layers) > shown else "")
        out.append((f"layer {names}" + (f" {field}" if field else ""), expected, got))
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    reinit, source = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    rows = read_rows(os.path.join(source, "models", "expected_structure.tsv"))
    checker = Checker()
    with tempfile.TemporaryDirectory(prefix="reinit-structure-") as tmp:
        models = Models(source, tmp)
        plans = {}  # (model, variant) -> plan or the error text
        for row in rows:
            variants = ["eval", "train"] if row["variant"] == "*" else [row["variant"]]
            for variant in variants:
                key = (row["model"], variant)
                where = f"{row['model']}" + ("" if variant == "-" else f" [{variant}]") + \
                        f" (expected_structure.tsv:{row['lineno']})"
                if key not in plans:
                    try:
                        plans[key] = inspect(reinit, models.path(*key))
                    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                        plans[key] = str(e)
                plan = plans[key]
                if isinstance(plan, str):
                    checker.row(where, [("inspect", "a plan", plan)])
                    continue
                if row["layer"] == "-":
                    checker.row(where, check_model_row(plan, row))
                else:
                    checker.row(where, check_layer_row(plan, row))

    for where, what, expected, got in checker.failures:
        print(f"FAIL {where}: {what}: expected {expected}, got {got}")
    failed_rows = len({f[0] for f in checker.failures})
    print(f"{checker.passed} passed, {failed_rows} failed")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
