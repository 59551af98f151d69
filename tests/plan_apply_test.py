#!/usr/bin/python3
"""Plan and apply agree (issue 12, item 1): on every model of every corpus, whatever `reinit
inspect` plans, `reinit` applies and writes.

Usage: plan_apply_test.py REINIT SOURCE_DIR [--quick]

Models: models/*.onnx, models/corpus/*.onnx.gz, models/thirdparty/*.onnx.gz, and the fuzz seed
corpus and crashers (fuzz/corpus, fuzz/crashers: hostile inputs, which may well be refused). For
each model and scheme (auto, he-normal, orthogonal, torch-default, gpt2; --quick: auto), when
`reinit inspect MODEL --json --scheme S` succeeds, `reinit MODEL --scheme S -o OUT` must exit 0
and write OUT: an error after a successful plan is a defect. A refusal at planning time (exit 1
with `reinit: error:`) is fine; a crash (a signal, or an exit code other than 0, 1, 2) never is.
Prints one line per failure and "N passed, M failed".
"""

import glob
import gzip
import os
import subprocess
import sys
import tempfile

REINIT, SOURCE = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv[3:]
SCHEMES = ["auto"] if QUICK else ["auto", "he-normal", "orthogonal", "torch-default", "gpt2"]


def models(tmp):
    paths = sorted(glob.glob(os.path.join(SOURCE, "models", "*.onnx")))
    for pattern in ("corpus", "thirdparty"):
        for gz in sorted(glob.glob(os.path.join(SOURCE, "models", pattern, "*.onnx.gz"))):
            out = os.path.join(tmp, pattern + "." + os.path.basename(gz)[:-3])
            with gzip.open(gz, "rb") as f, open(out, "wb") as g:
                g.write(f.read())
            paths.append(out)
    for folder in ("corpus", "crashers"):
        paths += sorted(p for p in glob.glob(os.path.join(SOURCE, "fuzz", folder, "*"))
                        if os.path.isfile(p))
    return paths


def run(args):
    p = subprocess.run([REINIT, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr.strip().splitlines()[-1:] or [""]


passed, failures = 0, []
with tempfile.TemporaryDirectory() as tmp:
    for path in models(tmp):
        name = os.path.relpath(path, SOURCE) if path.startswith(SOURCE) else os.path.basename(path)
        for scheme in SCHEMES:
            code, err = run(["inspect", path, "--json", "--scheme", scheme])
            if code not in (0, 1, 2):
                failures.append(f"{name} [{scheme}]: inspect crashed (exit {code}): {err[0]}")
                continue
            if code != 0:
                passed += 1  # refused at planning time, with a message
                continue
            out = os.path.join(tmp, "out.onnx")
            if os.path.exists(out):
                os.remove(out)
            code, err = run([path, "--scheme", scheme, "-o", out, "-q"])
            if code != 0 or not os.path.exists(out):
                failures.append(f"{name} [{scheme}]: planned, then apply failed (exit {code}): "
                                f"{err[0]}")
            else:
                passed += 1

for f in failures:
    print("FAIL " + f)
print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
