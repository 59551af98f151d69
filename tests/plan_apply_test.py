#!/usr/bin/python3
"""Plan and apply agree (issue 12, item 1): on every model of every corpus, whatever `reinit
inspect` plans, `reinit` applies and writes.

Usage: plan_apply_test.py REINIT SOURCE_DIR [--quick] [--all]

Models: models/*.onnx, models/corpus/*.onnx.gz, models/thirdparty/*.onnx.gz, and the fuzz seed
corpus and crashers (fuzz/corpus, fuzz/crashers: hostile inputs, which may well be refused). For
each model and scheme (auto, he-normal, orthogonal, torch-default, gpt2; --quick: auto), when
`reinit inspect MODEL --json --scheme S` succeeds, `reinit MODEL --scheme S -o OUT` must exit 0
and write OUT: an error after a successful plan is a defect. A refusal at planning time (exit 1
with `reinit: error:`) is fine; a crash (a signal, or an exit code other than 0, 1, 2) never is.

A pair that another test of the suite applies already, and fails on unless `reinit` exits 0 and
writes a model that loads, is left to that test (a stronger check of the same run: the apply
must succeed whatever the plan says), unless --all:
  - corpus_test.py: every corpus model under --scheme auto (where onnx and numpy (the venv) are);
  - thirdparty_test.py: every third-party model under auto, and he-normal without --quick
    (where onnx and numpy (the venv) are; not a pair its known_gaps.tsv excuses for "apply");
  - ort_test.py: every sample, corpus and third-party model under its SCHEMES, where ONNX
    Runtime is installed and not with --quick (the ort test runs in Release builds only, the
    ones that run this test without --quick); not a model its known_gaps.tsv excuses for a
    check other than (a), which may stop it before (b).
Prints one line per failure, "N passed, M failed" and how many pairs were left to which test.
"""

import glob
import gzip
import importlib.util
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REINIT, SOURCE = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv[3:]
ALL = "--all" in sys.argv[3:]
SCHEMES = ["auto"] if QUICK else ["auto", "he-normal", "orthogonal", "torch-default", "gpt2"]


def models(tmp):
    """(kind, name, path) of every model: kind is sample, corpus, thirdparty or fuzz."""
    out = [("sample", os.path.basename(p)[:-len(".onnx")], p)
           for p in sorted(glob.glob(os.path.join(SOURCE, "models", "*.onnx")))]
    for kind in ("corpus", "thirdparty"):
        for gz in sorted(glob.glob(os.path.join(SOURCE, "models", kind, "*.onnx.gz"))):
            name = os.path.basename(gz)[:-len(".onnx.gz")]
            path = os.path.join(tmp, f"{kind}.{name}.onnx")
            with gzip.open(gz, "rb") as f, open(path, "wb") as g:
                g.write(f.read())
            out.append((kind, name, path))
    for folder in ("corpus", "crashers"):
        out += [("fuzz", os.path.basename(p), p)
                for p in sorted(glob.glob(os.path.join(SOURCE, "fuzz", folder, "*")))
                if os.path.isfile(p)]
    return out


def thirdparty_apply_gaps():
    """(model, scheme) pairs models/thirdparty/known_gaps.tsv excuses for the check "apply"."""
    path = os.path.join(SOURCE, "models", "thirdparty", "known_gaps.tsv")
    gaps = set()
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 3 and not line.startswith("#") and cols[1] == "apply":
                    gaps.add((cols[0], cols[2]))
    return gaps


def applied_elsewhere():
    """A function (kind, name, scheme) -> the test that applies that pair, or None."""
    if ALL:
        return lambda kind, name, scheme: None
    python_ok = all(importlib.util.find_spec(m) for m in ("onnx", "numpy"))
    gaps = thirdparty_apply_gaps()
    thirdparty_schemes = {"auto"} if QUICK else {"auto", "he-normal"}
    ort_schemes, ort_gaps = set(), set()
    if python_ok and not QUICK and importlib.util.find_spec("onnxruntime"):
        sys.path.insert(0, HERE)
        try:
            import ort_test  # noqa: E402  (the ort test's own schemes, gaps and availability)
        except SystemExit:  # it exits 77 where onnxruntime does not import
            ort_test = None
        if ort_test and ort_test.ort_available() is None:
            ort_schemes = set(ort_test.SCHEMES)
            # A model with an excused check other than (a) may not get to (b).
            ort_gaps = {g["label"] for g in ort_test.read_known_gaps(ort_test.KNOWN_GAPS)
                        if g["check"] != "a"}

    def which(kind, name, scheme):
        if not python_ok or kind == "fuzz":
            return None
        if scheme in ort_schemes and f"{kind}/{name}" not in ort_gaps:
            return "ort"
        if kind == "corpus" and scheme == "auto":
            return "corpus"
        if kind == "thirdparty" and scheme in thirdparty_schemes and (name, scheme) not in gaps:
            return "thirdparty"
        return None
    return which


def run(args):
    p = subprocess.run([REINIT, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr.strip().splitlines()[-1:] or [""]


passed, failures, left = 0, [], {}
elsewhere = applied_elsewhere()
with tempfile.TemporaryDirectory() as tmp:
    for kind, name, path in models(tmp):
        label = f"{kind}/{name}"
        for scheme in SCHEMES:
            other = elsewhere(kind, name, scheme)
            if other:
                left[other] = left.get(other, 0) + 1
                continue
            code, err = run(["inspect", path, "--json", "--scheme", scheme])
            if code not in (0, 1, 2):
                failures.append(f"{label} [{scheme}]: inspect crashed (exit {code}): {err[0]}")
                continue
            if code != 0:
                passed += 1  # refused at planning time, with a message
                continue
            out = os.path.join(tmp, "out.onnx")
            if os.path.exists(out):
                os.remove(out)
            code, err = run([path, "--scheme", scheme, "-o", out, "-q"])
            if code != 0 or not os.path.exists(out):
                failures.append(f"{label} [{scheme}]: planned, then apply failed (exit {code}): "
                                f"{err[0]}")
            else:
                passed += 1

for f in failures:
    print("FAIL " + f)
print(f"{passed} passed, {len(failures)} failed; left to the test that applies them: " +
      (", ".join(f"{n} to {t}" for t, n in sorted(left.items())) or "none"))
sys.exit(1 if failures else 0)
