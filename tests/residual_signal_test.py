#!/usr/bin/python3
"""The residual stream through the sample models after re-initialization (issue 11, item 5).

Usage: residual_signal_test.py REINIT SOURCE_DIR

Runs `reinit MODEL --scheme auto` (and `--residual none`, today's per-layer plan) on the
residual sample models, then `reinit inspect OUT --propagate`, and reads the stream's std after
every join from its output:
  - residual_mlp.onnx (32 BN-free blocks): under auto the stream after the last block is within
    [0.25, 4] of the first layer's output; under --residual none it grows past 1e3 (He
    branches double the variance per block);
  - gpt_decoder.onnx, pre-LN, generated with 12 and with 48 blocks: under auto the stream after
    the last block is within 3x of its std after the first block, and that ratio changes by
    less than 1.5x between 12 and 48 blocks; under --residual none it is over 3x at 48 blocks
    and grows with depth;
  - bert_encoder.onnx, post-LN: auto leaves the stream alone (the same bytes as --residual none).
Needs onnx and numpy (the venv) only (models/generate.py); prints "N passed, M failed".
"""

import os
import subprocess
import sys
import tempfile

REINIT, SOURCE = sys.argv[1], sys.argv[2]
results = []


def check(name, ok, detail):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ": " + detail)


def run(*args):
    p = subprocess.run([REINIT, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("reinit " + " ".join(args) + " failed:\n" + p.stderr)
    return p.stdout


def signal(model, tmp, *options):
    """(first layer's std after its activation, [stream std after each join]) after reinit."""
    out = os.path.join(tmp, "out.onnx")
    run(model, "-o", out, "-q", "--scheme", "auto", *options)
    text = run("inspect", out, "--propagate").splitlines()
    head = next(i for i, l in enumerate(text) if l.startswith("layer "))
    first_layer = float(text[head + 1].split()[-1])
    start = text.index("residual streams, std after each join:") + 2
    joins = []
    for line in text[start:]:
        if not line.strip() or line.startswith("stream0:"):
            break
        joins.append(float(line.split()[-1]))
    return first_layer, joins


def generate(name, blocks, tmp):
    folder = os.path.join(tmp, f"{name}{blocks}")
    subprocess.run([sys.executable, os.path.join(SOURCE, "models", "generate.py"), "--only",
                    name, "--blocks", str(blocks), "--out", folder], check=True,
                   capture_output=True)
    return os.path.join(folder, name + ".onnx")


with tempfile.TemporaryDirectory() as tmp:
    mlp = os.path.join(SOURCE, "models", "residual_mlp.onnx")
    first, joins = signal(mlp, tmp)
    check("residual_mlp auto: 32 joins measured", len(joins) == 32, f"{len(joins)} joins")
    r = joins[-1] / first
    check("residual_mlp auto: last block / first layer in [0.25, 4]", 0.25 <= r <= 4, f"{r:.4g}")
    first, joins = signal(mlp, tmp, "--residual", "none")
    r = joins[-1] / first
    check("residual_mlp --residual none: the stream explodes (> 1e3)", r > 1e3, f"{r:.4g}")

    ratios = {}
    for blocks in (12, 48):
        model = generate("gpt_decoder", blocks, tmp)
        for rule in ("auto", "none"):
            options = () if rule == "auto" else ("--residual", "none")
            _, joins = signal(model, tmp, *options)
            check(f"gpt_decoder {blocks} blocks {rule}: 2 joins per block",
                  len(joins) == 2 * blocks, f"{len(joins)} joins")
            # After the first block: its second join (attention, then MLP).
            ratios[(blocks, rule)] = joins[-1] / joins[1]
    for blocks in (12, 48):
        r = ratios[(blocks, "auto")]
        check(f"gpt_decoder {blocks} blocks auto: last block / first block <= 3", r <= 3, f"{r:.4g}")
    change = ratios[(48, "auto")] / ratios[(12, "auto")]
    check("gpt_decoder auto: ratio changes < 1.5x from 12 to 48 blocks",
          1 / 1.5 < change < 1.5, f"{ratios[(12, 'auto')]:.4g} -> {ratios[(48, 'auto')]:.4g}")
    check("gpt_decoder --residual none: over 3x at 48 blocks, growing with depth",
          ratios[(48, "none")] > 3 and ratios[(48, "none")] > ratios[(12, "none")],
          f"{ratios[(12, 'none')]:.4g} -> {ratios[(48, 'none')]:.4g}")

    bert = os.path.join(SOURCE, "models", "bert_encoder.onnx")
    a, b = os.path.join(tmp, "a.onnx"), os.path.join(tmp, "b.onnx")
    run(bert, "-o", a, "-q")
    run(bert, "-o", b, "-q", "--residual", "none")
    same = open(a, "rb").read() == open(b, "rb").read()
    check("bert_encoder (post-LN): auto leaves the stream alone", same, "same bytes" if same
          else "outputs differ")

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
