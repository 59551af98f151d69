#!/usr/bin/python3
"""The reference executor and LSUV on the real architectures of models/corpus/.

For every <name>.eval.onnx.gz (or, with --subset, the smaller ones):
  (a) `reinit inspect M --propagate` runs (every op of the model is one the executor runs),
      on the .train.onnx.gz variant too (BatchNormalization in training mode, Dropout);
  (b) `reinit M --scheme lsuv -o OUT` exits 0 and its plan gives every LSUV layer a final
      output variance within 1 +- 0.1 (the default tolerance);
  (c) `reinit inspect OUT --propagate` measures those layers again, independently of LSUV's
      bookkeeping, on the same random inputs: std before the activation squared is within
      1 +- 0.1 too.
Usage: corpus_signal_test.py REINIT_BINARY SOURCE_DIR [--subset]. Needs nothing but python3.
"""

import gzip
import os
import re
import subprocess
import sys
import tempfile
import time

SMALL = ["bigru", "dcgan_generator", "lstm_embedding", "mobilenet_v3_small", "resnet18",
         "shufflenet_v2_x0_5", "transformer_encoder", "vit_small"]
TOLERANCE = 0.1


def run(args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return r.stdout


def table_rows(text, header_start):
    """The rows of the table whose header line starts with header_start, split on 2+ spaces."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header_start):
            header = re.split(r"\s{2,}", line.strip())
            rows = []
            for row in lines[i + 1:]:
                if not row.strip():
                    break
                rows.append(dict(zip(header, re.split(r"\s{2,}", row.strip()))))
            return rows
    return []


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    reinit, source = sys.argv[1], sys.argv[2]
    subset = "--subset" in sys.argv[3:]
    corpus = os.path.join(source, "models", "corpus")
    names = sorted(f[:-len(".eval.onnx.gz")] for f in os.listdir(corpus)
                   if f.endswith(".eval.onnx.gz"))
    if subset:
        names = [n for n in names if n in SMALL]
    failures = []
    print(f"{'model':22} {'lsuv layers':>11} {'variance (plan)':>18} {'variance (measured)':>20}"
          f" {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t0 = time.time()
            path = os.path.join(tmp, name + ".onnx")
            with gzip.open(os.path.join(corpus, name + ".eval.onnx.gz"), "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data)
            out = os.path.join(tmp, name + ".lsuv.onnx")
            train = os.path.join(tmp, name + ".train.onnx")
            with gzip.open(os.path.join(corpus, name + ".train.onnx.gz"), "rb") as f:
                with open(train, "wb") as g:
                    g.write(f.read())
            try:
                run([reinit, "inspect", train, "--propagate", "--batch", "1"])
                run([reinit, "inspect", path, "--propagate", "--batch", "1"])
                plan = run([reinit, path, "-o", out, "--scheme", "lsuv", "--batch", "1", "-q"])
                measured = run([reinit, "inspect", out, "--propagate", "--batch", "1"])
            except RuntimeError as e:
                failures.append(f"{name}: {e}")
                continue
            lsuv = {}
            for row in table_rows(plan, "layer "):
                m = re.search(r": var ([0-9.eE+-]+) \(", row.get("parameter", ""))
                if m:
                    lsuv[row["layer"]] = float(m.group(1))
            stds = {row["layer"]: float(row["std before"])
                    for row in table_rows(measured, "layer ")}
            if not lsuv:
                failures.append(f"{name}: no LSUV layer in the plan")
                continue
            again = []
            for layer, variance in lsuv.items():
                if abs(variance - 1) > TOLERANCE:
                    failures.append(f"{name}: {layer}: LSUV ended at variance {variance}")
                if layer not in stds:
                    failures.append(f"{name}: {layer}: not measured by --propagate")
                    continue
                v = stds[layer] ** 2
                again.append(v)
                # The table prints 4 significant digits of the std.
                if abs(v - 1) > TOLERANCE + 1e-3:
                    failures.append(f"{name}: {layer}: measured variance {v:.4f} after LSUV")
            print(f"{name:22} {len(lsuv):>11} {min(lsuv.values()):>8.4f}-{max(lsuv.values()):<9.4f}"
                  f" {min(again, default=0):>10.4f}-{max(again, default=0):<9.4f}"
                  f" {time.time() - t0:>8.1f}")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
