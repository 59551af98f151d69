#!/usr/bin/python3
"""The same bytes and the same words before and after a change of the code's shape (issue 18).

Usage: golden_test.py REINIT SOURCE_DIR [--quick] [--record]

For every sample, corpus and third-party model the project holds, and each scheme of SCHEMES,
runs `reinit MODEL --scheme S -o out.onnx` and compares with tests/golden/hashes.tsv, recorded
by the code before the refactoring of issue 18 began:
  - `output`: the SHA-256 of the written model's bytes (or "none" when nothing was written);
  - `words`: the SHA-256 of the exit code, the standard output (the per-layer summary) and the
    standard error (warnings, or the error message of a refusal).
Also, per model, `inspect MODEL --json` (the Plan as JSON) and `inspect MODEL` (the table).
LSUV runs the model in the reference executor: it takes `--batch 1` here (the same planning and
scaling code, a fifth of the time on the big convnets), and is left out on the two models where
even that takes over 5 s in Release (LSUV_SLOW).
Runs in a folder of its own with relative names, so no path in the words depends on where the
checkout is. --quick: --scheme auto and the inspect runs only (the sanitized build). --record
writes the file anew from this build: only for a change that is meant to change what reinit
writes or says, and then in a commit of its own that says why.
Prints one line per difference and "N passed, M failed".
"""

import glob
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REINIT, SOURCE = os.path.abspath(sys.argv[1]), sys.argv[2]
QUICK = "--quick" in sys.argv[3:]
RECORD = "--record" in sys.argv[3:]
SCHEMES = ["auto", "he-normal", "orthogonal", "torch-default", "gpt2", "lsuv"]
HASHES = os.path.join(HERE, "golden", "hashes.tsv")
LSUV_SLOW = {"thirdparty.caffe2_alexnet", "thirdparty.caffe2_densenet121"}


def models(tmp):
    """(label, file name in tmp) of every model, copied or unzipped into tmp."""
    out = []
    for p in sorted(glob.glob(os.path.join(SOURCE, "models", "*.onnx"))):
        name = "sample." + os.path.basename(p)
        shutil.copyfile(p, os.path.join(tmp, name))
        out.append((name[:-len(".onnx")], name))
    for kind in ("corpus", "thirdparty"):
        for gz in sorted(glob.glob(os.path.join(SOURCE, "models", kind, "*.onnx.gz"))):
            name = f"{kind}.{os.path.basename(gz)[:-len('.gz')]}"
            with gzip.open(gz, "rb") as f, open(os.path.join(tmp, name), "wb") as g:
                g.write(f.read())
            out.append((name[:-len(".onnx")], name))
    return out


def sha(data):
    return hashlib.sha256(data).hexdigest()[:32]


def run(tmp, args):
    """(words digest, output digest or "none") of one run of reinit in tmp."""
    out = os.path.join(tmp, "out.onnx")
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.run([REINIT, *args], cwd=tmp, capture_output=True, timeout=600)
    words = sha(b"exit %d\n" % p.returncode + p.stdout + b"\0" + p.stderr)
    if p.returncode < 0 or p.returncode > 2:
        words = f"crash{p.returncode}"
    written = "none"
    if os.path.exists(out):
        with open(out, "rb") as f:
            written = sha(f.read())
    return words, written


def cases(tmp):
    """(key, args) of every run: key is 'model<TAB>what'."""
    for label, name in models(tmp):
        yield f"{label}\tinspect", ["inspect", name]
        yield f"{label}\tinspect-json", ["inspect", name, "--json"]
        for scheme in (["auto"] if QUICK else SCHEMES):
            if scheme == "lsuv" and label in LSUV_SLOW:
                continue
            extra = ["--batch", "1"] if scheme == "lsuv" else []
            yield f"{label}\t{scheme}", [name, "--scheme", scheme, "-o", "out.onnx", *extra]


def read_hashes():
    want = {}
    with open(HASHES) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            model, what, words, output = line.rstrip("\n").split("\t")
            want[f"{model}\t{what}"] = (words, output)
    return want


with tempfile.TemporaryDirectory() as tmp:
    got = {key: run(tmp, args) for key, args in cases(tmp)}

if RECORD:
    os.makedirs(os.path.dirname(HASHES), exist_ok=True)
    with open(HASHES, "w") as f:
        f.write("# model\twhat\twords (exit code, stdout, stderr)\toutput (the written model)\n")
        f.write("# written by tests/golden_test.py --record; see its docstring\n")
        for key, (words, output) in got.items():
            f.write(f"{key}\t{words}\t{output}\n")
    print(f"recorded {len(got)} runs in {HASHES}")
    sys.exit(0)

want = read_hashes()
passed, failed = 0, []
for key, (words, output) in got.items():
    if key not in want:
        failed.append(f"{key}: not in {os.path.relpath(HASHES, SOURCE)} (a new model? record it)")
        continue
    w_words, w_output = want[key]
    diffs = []
    if words != w_words:
        diffs.append("what reinit said (exit code, stdout or stderr) changed")
    if output != w_output:
        diffs.append(f"the written model changed ({w_output} -> {output})")
    if diffs:
        failed.append(key.replace("\t", " [") + "]: " + "; ".join(diffs))
    else:
        passed += 1
for f in failed:
    print("FAIL " + f)
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
