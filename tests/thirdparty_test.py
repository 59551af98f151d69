"""reinit on third-party models (models/thirdparty/: paddle2onnx, tf2onnx, spox, the ONNX
backend test data, and torch exports made by others), weights zeroed.

For every <name>.onnx.gz there:
  - `reinit inspect --json` exits 0 and gives a plan;
  - `reinit MODEL --scheme auto -o OUT` and `--scheme he-normal` exit 0, and OUT loads with
    onnx (and passes the ONNX checker when the input does);
  - every row of models/thirdparty/expected.tsv holds (its header says how to read it).
A row that fails and is listed in known_gaps.tsv is a known gap; an unlisted failure fails the
test, and so does a listed gap that no longer occurs (delete its line).

Usage: thirdparty_test.py REINIT_BINARY SOURCE_DIR [--quick] (--quick: --scheme auto only, for the
sanitized build). Needs onnx and numpy (the venv); exits 77
(skipped) without them.
"""

import fnmatch
import gzip
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401
    import onnx
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

FACTS = ("count", "activation", "fixed", "norm", "warning")


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


def run(args, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def tensors(graph, out=None):
    """name -> serialized TensorProto of every initializer and Constant value, in every
    subgraph."""
    out = {} if out is None else out
    for t in graph.initializer:
        out[t.name] = t.SerializeToString()
    for n in graph.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.type == onnx.AttributeProto.TENSOR:
                out[n.output[0]] = a.t.SerializeToString()
            elif a.type == onnx.AttributeProto.GRAPH:
                tensors(a.g, out)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    tensors(g, out)
    return out


def globs(match):
    return [g for g in match.split(",") if g]


def names_of(layer):
    return [layer.get("name", ""), layer.get("weight", {}).get("name", "")]


def matches(layer, pats):
    return any(n and fnmatch.fnmatchcase(n, p) for n in names_of(layer) for p in pats)


def check_row(model, fact, match, expected, plan, fixed_pats, before, afters):
    """Returns a list of (got) strings, empty when the row holds."""
    layers = plan.get("layers", [])
    bad = []
    if fact == "count":
        def drawn(layer):
            if layer.get("skipped"):
                return False
            w = layer.get("weight", {}).get("name", "")
            return not any(fnmatch.fnmatchcase(w, p) for p in fixed_pats)
        if match == "norm":
            got = [la for la in layers if la.get("kind") == "norm" and drawn(la)]
        else:
            got = [la for la in layers if la.get("op") == match and drawn(la)]
        if len(got) != int(expected):
            bad.append(f"{len(got)} drawn")
    elif fact == "activation":
        kind, _, param = expected.partition(":")
        for pat in globs(match):
            hit = [la for la in layers if la.get("kind") != "norm" and matches(la, [pat])]
            if not hit:
                bad.append(f"'{pat}' matches no layer")
            for la in hit:
                act = la.get("activation", {})
                if la.get("skipped"):
                    bad.append(f"{la['name']}: skipped: {la['skipped']}")
                    continue
                others = sorted({a.split(" ")[0] for a in act.get("alternatives", [])} - {kind})
                path = " -> ".join(act.get("path", []))
                if act.get("kind") != kind:
                    bad.append(f"{la['name']}: {act.get('kind')} (via {path})")
                elif act.get("ambiguous") and others:
                    bad.append(f"{la['name']}: {kind}, ambiguous: also {', '.join(others)}")
                elif param and abs(float(act.get("param", 0)) - float(param)) > 1e-3:
                    bad.append(f"{la['name']}: {kind} with parameter {act.get('param')}")
    elif fact == "fixed":
        pats = globs(match)
        names = [n for n in before if any(fnmatch.fnmatchcase(n, p) for p in pats)]
        if not names:
            bad.append(f"'{match}' names no tensor of the model")
        for la in layers:
            w = la.get("weight", {}).get("name", "")
            if not any(fnmatch.fnmatchcase(w, p) for p in pats):
                continue
            if not la.get("skipped"):
                sch = la.get("weight", {}).get("scheme", "")
                bad.append(f"{w}: drawn as the weight of {la.get('op')} '{la['name']}' "
                           f"({sch}, activation {la.get('activation', {}).get('kind')})")
            elif "fixed" not in la["skipped"]:
                bad.append(f"{w}: skipped: {la['skipped']} (the plan does not say fixed)")
        for scheme, after in afters.items():
            for n in names:
                if after.get(n) != before[n]:
                    bad.append(f"{n}: changed by --scheme {scheme}")
    elif fact == "norm":
        for pat in globs(match):
            hit = [la for la in layers if la.get("kind") == "norm" and not la.get("skipped")
                   and fnmatch.fnmatchcase(la.get("weight", {}).get("name", ""), pat)]
            if not hit:
                other = [la for la in layers if matches(la, [pat])]
                bad.append(f"'{pat}': no norm layer" +
                           "".join(f"; {la['name']} ({la.get('op')}) skipped: "
                                   f"{la.get('skipped')}" for la in other))
    elif fact == "warning":
        if not any(match in w for w in plan.get("warnings", [])):
            bad.append(f"warnings: {plan.get('warnings', [])}")
    return bad


def main():
    args = [a for a in sys.argv[1:] if a != "--quick"]
    if len(args) != 2:
        raise SystemExit(__doc__)
    reinit, src = args
    # --quick (the sanitized build): --scheme auto only; the Release build runs both schemes.
    schemes = ("auto",) if "--quick" in sys.argv[1:] else ("auto", "he-normal")
    tp = os.path.join(src, "models", "thirdparty")
    expected = read_tsv(os.path.join(tp, "expected.tsv"), 4)
    gaps = {}
    for lineno, cols in read_tsv(os.path.join(tp, "known_gaps.tsv"), 4):
        gaps[(cols[0], cols[1], cols[2])] = (lineno, cols[3])
    for _, cols in expected:
        if cols[1] not in FACTS:
            raise SystemExit(f"expected.tsv: unknown fact '{cols[1]}'")
    models = sorted(f[:-len(".onnx.gz")] for f in os.listdir(tp) if f.endswith(".onnx.gz"))
    passed = failed = known = 0
    seen_gaps = set()
    unexpected = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            path = os.path.join(tmp, name + ".onnx")
            with gzip.open(os.path.join(tp, name + ".onnx.gz")) as f, open(path, "wb") as o:
                o.write(f.read())
            model = onnx.load(path)
            before = tensors(model.graph)
            try:
                onnx.checker.check_model(model, full_check=True)
                input_ok = True
            except Exception:
                input_ok = False
            problems = []  # (check, what, message): known_gaps.tsv may list (name, check, what)
            r = run([reinit, "inspect", path, "--json"])
            plan = {}
            if r.returncode != 0:
                problems.append(("inspect", "plan",
                                 f"inspect exited {r.returncode}: {r.stderr.strip()[:400]}"))
            else:
                plan = json.loads(r.stdout)
            afters = {}
            for scheme in schemes:
                out = os.path.join(tmp, f"{name}.{scheme}.onnx")
                r = run([reinit, path, "--scheme", scheme, "-o", out, "-q"])
                if r.returncode != 0:
                    problems.append(("apply", scheme, f"--scheme {scheme} exited "
                                     f"{r.returncode}: {r.stderr.strip()[:400]}"))
                    continue
                try:
                    m = onnx.load(out)
                    if input_ok:
                        onnx.checker.check_model(m, full_check=True)
                    afters[scheme] = tensors(m.graph)
                except Exception as e:
                    problems.append(("apply", scheme,
                                     f"--scheme {scheme}: output does not load/check: {e}"))
            for check, what, msg in problems:
                key = (name, check, what)
                if key in gaps:
                    known += 1
                    seen_gaps.add(key)
                    print(f"  known gap  {check} {what}: {gaps[key][1]}\n      got {msg}")
                else:
                    print(f"FAIL {name}: {msg}")
                    failed += 1
                    unexpected.append(name)
            rows = [(ln, c) for ln, c in expected if c[0] == name]
            if not rows:
                print(f"FAIL {name}: no expected.tsv rows")
                failed += 1
                unexpected.append(name)
            fixed_pats = [g for _, c in rows if c[1] == "fixed" for g in globs(c[2])]
            layers = plan.get("layers", [])
            print(f"{name}: {len(layers)} plan entries, "
                  f"{sum(1 for la in layers if not la.get('skipped'))} drawn, "
                  f"{len(rows)} facts{'' if input_ok else ' (input fails the ONNX checker)'}")
            if not plan:
                continue
            for lineno, (m, fact, match, exp, *note) in rows:
                bad = check_row(name, fact, match, exp, plan, fixed_pats, before, afters)
                key = (m, fact, match)
                if not bad:
                    passed += 1
                    continue
                if key in gaps:
                    known += 1
                    seen_gaps.add(key)
                    print(f"  known gap  {fact} {match[:70]}: expected {exp}; "
                          f"{gaps[key][1]}")
                    for b in bad[:4]:
                        print(f"      got {b}")
                    if len(bad) > 4:
                        print(f"      ... and {len(bad) - 4} more")
                    continue
                failed += 1
                unexpected.append(f"{name} {fact} {match}")
                print(f"  FAIL  expected.tsv:{lineno} {name} {fact} {match}: expected {exp}")
                for b in bad:
                    print(f"      got {b}")
    stale = [k for k in gaps if k not in seen_gaps]
    for k in stale:
        print(f"FAIL known_gaps.tsv:{gaps[k][0]} {' '.join(k)}: no longer fails; delete the line")
        failed += 1
    print(f"{known} known gaps (models/thirdparty/known_gaps.tsv)")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
