#!/usr/bin/python3
"""The reinit benchmark: builds its models, runs every contender side by side, prints a table.

Usage:  .venv/bin/python bench/run.py [--reinit build/reinit] [--repeat 5] [--only 1,2,3,4,5]
            [--size-gib 1] [--llm-gib 8] [--threads 2] [--smoke] [--strict] [--keep-models]
            [--models-dir build/bench-models]    (all options: --help; bench/README.md)

Targets (issue 4):
  1  mlp.onnx, a 1 GiB single-file float32 model: reinit's median wall time at most 3x that of
     `cat model > copy`, at least 25x faster than the onnx + numpy script doing the same
     re-initialization (bench/baseline_numpy.py), peak RSS at most 1.3x the file size.
  2  llm-f16.onnx and llm-f32.onnx, ~8 GiB of weights each in one external data file:
     `reinit --external-data keep` within 3x `cat data > copy`, peak RSS at most 256 MiB.
  3  build/bench/rng_bench: at least 1e9 normal float32 values/s; PyTorch's normal_ beside it.
  4  build/bench/orthogonal_bench: orthogonal 4096x4096 float32 in at most 3 s; PyTorch's
     orthogonal_ beside it (once: it takes 1-2 minutes on two cores).
  5  reinit --threads 1, 2 and 3 write byte-identical files (every model above).

Method: each contender is run --repeat times, interleaved (round r starts with the r-th
contender, so that drift and neighbours hit all alike); the input's files are read through
once before every run so that every run starts from a warm page cache; each run's outputs are
deleted and the page cache's dirty pages written back (sync) before the next run, outside the
timing. Wall time and peak RSS come from bench/launch.py, which forks the contender from a
small process and waits for it with os.wait4 (see its docstring for why the runner cannot
measure its own children). Reported: median wall time, the largest peak RSS over the runs.
The first round's outputs are checked with onnx (bench/check_output.py) before they are
deleted; reinit's and the baseline's are compared tensor by tensor.

Results: a markdown table on stdout (progress on stderr). Rows are limits (speed, memory: FAIL
is reported, exit 1 only with --strict; not judged with --smoke) or checks (outputs load,
baseline equivalent, byte-identical across threads: FAIL exits 1). Exit 1 when a contender
fails to run, 2 when the benchmark cannot start (no reinit binary, not enough disk), 77 when
python3-onnx or python3-numpy is missing.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable or "/usr/bin/python3"
LAUNCH = os.path.join(HERE, "launch.py")
GIB = 1 << 30
MIB = 1 << 20
LLM_MODELS = ("llm-f16", "llm-f32")


def fmt_bytes(n):
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.1f} MiB"


def fmt_s(s):
    return f"{s:.3g} s" if s < 100 else f"{s:.0f} s"


STARTED = time.monotonic()


def log(msg):
    """Progress on stderr, with the minutes and seconds since the start."""
    m, sec = divmod(int(time.monotonic() - STARTED), 60)
    print(f"{m:3d}:{sec:02d} {msg}", file=sys.stderr, flush=True)


class Sample:
    """One run: wall seconds, exit code (negative: the signal), peak RSS in bytes."""

    def __init__(self, wall, rc, rss_kib, timed_out, reported=True):
        self.wall, self.rc, self.rss, self.timed_out = wall, rc, rss_kib * 1024, timed_out
        self.reported = reported  # False: launch.py itself failed


class Contender:
    """One program measured in a target: its command, the folder its outputs go to (and the
    file there that receives its stdout, for cat), its samples, or why it failed."""

    def __init__(self, name, cmd, out_dir, stdout_name=None, checked=False):
        self.name, self.cmd, self.out_dir, self.stdout_name = name, cmd, out_dir, stdout_name
        self.checked = checked  # its first output is kept for the first round's checks
        self.samples = []
        self.error = None

    def wall(self):
        return statistics.median(s.wall for s in self.samples)

    def rss(self):
        return max(s.rss for s in self.samples)


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows = []  # (target, what, measured, ratio, limit, result, kind)
        self.errors = []  # contenders that failed to run
        self.scratch = os.path.join(args.models_dir, "run")
        self.torch = False  # whether PyTorch can be imported (targets 3 and 4)

    # ---- running one command -------------------------------------------------------------
    def launch(self, tag, cmd, stdout_path=None, timeout=None):
        """Runs cmd through launch.py; returns (Sample, stderr tail)."""
        logs = os.path.join(self.scratch, "logs")
        os.makedirs(logs, exist_ok=True)
        report = os.path.join(logs, "launch.report")
        err_path = os.path.join(logs, tag + ".err")
        out_path = stdout_path or os.path.join(logs, tag + ".out")
        if os.path.exists(report):
            os.remove(report)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            subprocess.run([PY, "-S", "-I", LAUNCH, report, str(timeout or self.args.timeout)]
                           + cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        with open(err_path, errors="replace") as f:
            tail = f.read()[-2000:].strip()
        if not tail and not stdout_path:  # some programs print their errors on stdout
            with open(out_path, errors="replace") as f:
                tail = f.read()[-2000:].strip()
        try:
            with open(report) as f:
                wall, rc, rss, _, _, timed_out = f.read().split()
            return Sample(float(wall), int(rc), int(rss), timed_out == "1"), tail
        except (OSError, ValueError):
            return Sample(0.0, 1, 0, False, reported=False), tail

    def failed(self, sample, tail):
        """None when the run succeeded, else a one-paragraph description."""
        if not sample.reported:
            return f"launch.py wrote no report: {tail[-600:]}"
        if sample.timed_out:
            return f"timed out after {self.args.timeout} s"
        if sample.rc != 0:
            what = f"killed by signal {-sample.rc}" if sample.rc < 0 else f"exit {sample.rc}"
            return f"{what}: {tail[-600:]}" if tail else what
        return None

    def python(self, script, *args):
        """Runs one of bench/'s Python helpers (not timed); returns (rc, output)."""
        p = subprocess.run([PY, os.path.join(HERE, script), *args], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return p.returncode, p.stdout.strip()

    # ---- files -----------------------------------------------------------------------------
    @staticmethod
    def warm(paths):
        """Reads the files through once, so that every run starts from the page cache."""
        buf = bytearray(4 * MIB)
        for path in paths:
            with open(path, "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass

    @staticmethod
    def clear(folder):
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)

    @staticmethod
    def files_in(folder):
        out = []
        for root, _, names in os.walk(folder):
            out += [os.path.relpath(os.path.join(root, n), folder) for n in names]
        return sorted(out)

    @staticmethod
    def first_difference(a, b):
        """None when files a and b hold the same bytes, else a description."""
        if os.path.getsize(a) != os.path.getsize(b):
            return f"sizes {os.path.getsize(a)} and {os.path.getsize(b)}"
        offset = 0
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(8 * MIB), fb.read(8 * MIB)
                if x != y:
                    i = next(i for i in range(len(x)) if x[i] != y[i])
                    return f"first difference at byte {offset + i}"
                if not x:
                    return None
                offset += len(x)

    # ---- rows --------------------------------------------------------------------------------
    def limit_row(self, target, what, measured, ratio, limit, ok):
        result = "n/a (smoke)" if self.args.smoke else ("PASS" if ok else "FAIL")
        self.rows.append((target, what, measured, ratio, limit, result, "limit"))

    def check_row(self, target, what, measured, ok, limit="all hold"):
        self.rows.append((target, what, measured, "", limit, "PASS" if ok else "FAIL", "check"))

    def error_row(self, target, what, contender):
        self.errors.append(f"{what}: {contender.name}: {contender.error}")
        self.rows.append((target, what, f"{contender.name} failed to run (see below)", "", "",
                          "ERROR", "error"))

    def skip_row(self, target, what, why):
        self.rows.append((target, what, why, "", "", "SKIP", "skip"))

    # ---- interleaved timing ------------------------------------------------------------------
    def timed(self, tag, contenders, rounds, inputs, check_first_round):
        """Runs every contender `rounds` times, interleaved. The first round's outputs of the
        checked contenders stay until check_first_round(contenders) has looked at them."""
        for c in contenders:
            self.clear(c.out_dir)
        for r in range(rounds):
            k = r % len(contenders)
            for c in contenders[k:] + contenders[:k]:
                if c.error:
                    continue
                self.warm(inputs)
                stdout = os.path.join(c.out_dir, c.stdout_name) if c.stdout_name else None
                sample, tail = self.launch(f"{tag}.{c.name}", c.cmd, stdout)
                c.error = self.failed(sample, tail)
                if not c.error:
                    c.samples.append(sample)
                    log(f"  [{tag}] round {r + 1}/{rounds} {c.name}: {fmt_s(sample.wall)}, "
                        f"peak RSS {fmt_bytes(sample.rss)}")
                else:
                    log(f"  [{tag}] {c.name} failed: {c.error}")
                if r > 0 or c.error or not c.checked:
                    self.clear(c.out_dir)
                os.sync()
            if r == 0:
                check_first_round([c for c in contenders if not c.error])
                for c in contenders:
                    self.clear(c.out_dir)
                os.sync()

    # ---- models --------------------------------------------------------------------------------
    def model(self, name):
        """Builds (or reuses) a model; returns (onnx path, [data files])."""
        a = self.args
        rc, out = self.python("make_models.py", a.models_dir, "--which", name,
                              "--size-gib", str(a.size_gib), "--mlp-layers", str(a.mlp_layers),
                              "--llm-gib", str(a.llm_gib), "--llm-layers", str(a.llm_layers),
                              "--vocab", str(a.vocab))
        if rc != 0:
            sys.exit(f"run.py: make_models.py failed for {name}:\n{out}")
        log(f"  {out}")
        os.sync()  # the new files' write-back must not overlap the timed runs
        with open(os.path.join(a.models_dir, name + ".json")) as f:
            record = json.load(f)
        data = [os.path.join(a.models_dir, f) for f in sorted(record["files"])
                if not f.endswith(".onnx")]
        return os.path.join(a.models_dir, name + ".onnx"), data

    def drop_model(self, name):
        if self.args.keep_models:
            return
        for suffix in (".onnx", ".onnx.data", ".json"):
            p = os.path.join(self.args.models_dir, name + suffix)
            if os.path.exists(p):
                os.remove(p)
        os.sync()

    @staticmethod
    def cat_fsync(inputs, out_dir, name):
        """cat, then fsync of the copy (coreutils' `sync FILE`): what reinit's own writing
        costs, as reinit flushes its outputs to disk before renaming them into place."""
        out = os.path.join(out_dir, name)
        return Contender("cat+fsync", ["sh", "-c", 'o=$1; shift; cat "$@" > "$o" && sync "$o"',
                                       "sh", out] + inputs, out_dir)

    def info_row(self, target, what, measured, ratio):
        self.rows.append((target, what, measured, ratio, "", "info", "info"))

    def reinit_cmd(self, model, out, threads, external=False):
        cmd = [self.args.reinit, model, "-o", out, "--scheme", "auto", "--threads", str(threads),
               "--quiet", "--seed", str(self.args.seed)]
        return cmd + (["--external-data", "keep"] if external else [])

    # ---- target 1 ------------------------------------------------------------------------------
    def target1(self, model):
        a = self.args
        size = os.path.getsize(model)
        label = f"mlp.onnx {fmt_bytes(size)}"
        base = os.path.join(self.scratch, "t1")
        cat = Contender("cat", ["cat", model], os.path.join(base, "cat"), "copy.onnx")
        rei = Contender("reinit", self.reinit_cmd(model, os.path.join(base, "reinit", "out.onnx"),
                                                  a.threads), os.path.join(base, "reinit"),
                        checked=True)
        npy = Contender("onnx+numpy", [PY, os.path.join(HERE, "baseline_numpy.py"), model,
                                       os.path.join(base, "numpy", "out.onnx"),
                                       "--seed", str(a.seed)], os.path.join(base, "numpy"),
                        checked=True)
        # numpy at its fastest (float32 Generator): reported beside the judged baseline.
        tuned = Contender("onnx+numpy tuned", [PY, os.path.join(HERE, "baseline_numpy.py"), model,
                                               os.path.join(base, "tuned", "out.onnx"),
                                               "--seed", str(a.seed), "--style", "tuned"],
                          os.path.join(base, "tuned"), checked=True)
        fsync = self.cat_fsync([model], os.path.join(base, "cat+fsync"), "copy.onnx")
        checks = {}

        def check(done):
            names = {c.name for c in done}
            if {"reinit", "onnx+numpy"} <= names:
                rc, out = self.python("check_output.py", os.path.join(rei.out_dir, "out.onnx"),
                                      "--like", os.path.join(npy.out_dir, "out.onnx"))
                checks["equal"] = (rc == 0, out)

        log(f"[1] {label}: cat, reinit --threads {a.threads}, onnx+numpy (obvious, tuned), "
            f"cat+fsync; {a.repeat} rounds")
        self.timed("t1", [cat, rei, npy, tuned, fsync], a.repeat, [model], check)
        for c in (cat, rei, npy, tuned, fsync):
            if c.error:
                self.error_row(1, label, c)
        if "equal" in checks:
            ok, out = checks["equal"]
            self.check_row(1, f"{label}: outputs load; reinit and onnx+numpy draw alike",
                           "yes" if ok else out.replace("\n", "; ")[:300], ok)
        if not rei.error and not cat.error:
            ratio = rei.wall() / cat.wall()
            self.limit_row(1, f"{label}: reinit time vs cat",
                           f"reinit {fmt_s(rei.wall())}, cat {fmt_s(cat.wall())}",
                           f"{ratio:.3g}x", "≤ 3x", ratio <= 3)
        if not rei.error and not fsync.error:
            self.info_row(1, f"{label}: reinit time vs cat + fsync of the copy",
                          f"reinit {fmt_s(rei.wall())}, cat+fsync {fmt_s(fsync.wall())}",
                          f"{rei.wall() / fsync.wall():.3g}x")
        if not rei.error and not npy.error:
            ratio = npy.wall() / rei.wall()
            self.limit_row(1, f"{label}: reinit speed-up over onnx+numpy (the obvious script)",
                           f"onnx+numpy {fmt_s(npy.wall())}, reinit {fmt_s(rei.wall())}",
                           f"{ratio:.3g}x", "≥ 25x", ratio >= 25)
        if not rei.error and not tuned.error:
            self.info_row(1, f"{label}: reinit speed-up over onnx+numpy tuned (float32 Generator)",
                          f"tuned {fmt_s(tuned.wall())}, reinit {fmt_s(rei.wall())}",
                          f"{tuned.wall() / rei.wall():.3g}x")
        if not rei.error:
            ratio = rei.rss() / size
            rss = f"reinit {fmt_bytes(rei.rss())}"
            if not npy.error:
                rss += f" (onnx+numpy {fmt_bytes(npy.rss())})"
            self.limit_row(1, f"{label}: reinit peak RSS vs file size", rss, f"{ratio:.3g}x",
                           "≤ 1.3x", ratio <= 1.3)

    # ---- target 2 ------------------------------------------------------------------------------
    def target2(self, name, model, data):
        a = self.args
        data_size = sum(os.path.getsize(d) for d in data)
        label = f"{name}.onnx {fmt_bytes(data_size)} external"
        base = os.path.join(self.scratch, "t2")
        cat = Contender("cat", ["cat"] + data, os.path.join(base, "cat"), "copy.data")
        rei = Contender("reinit", self.reinit_cmd(model, os.path.join(base, "reinit", name + ".onnx"),
                                                  a.threads, external=True),
                        os.path.join(base, "reinit"), checked=True)
        fsync = self.cat_fsync(data, os.path.join(base, "cat+fsync"), "copy.data")
        checks = {}

        def check(done):
            if any(c.name == "reinit" for c in done):
                args = [os.path.join(rei.out_dir, name + ".onnx")]
                if data_size > 512 * MIB:
                    args.append("--no-data")
                checks["load"] = self.python("check_output.py", *args)

        rounds = a.llm_repeat
        log(f"[2] {label}: cat, reinit --threads {a.threads} --external-data keep, "
            f"cat+fsync; {rounds} rounds")
        self.timed(f"t2.{name}", [cat, rei, fsync], rounds, [model] + data, check)
        for c in (cat, rei, fsync):
            if c.error:
                self.error_row(2, label, c)
        if "load" in checks:
            rc, out = checks["load"]
            self.check_row(2, f"{label}: reinit's output loads",
                           "yes" if rc == 0 else out.replace("\n", "; ")[:300], rc == 0)
        if not rei.error and not cat.error:
            ratio = rei.wall() / cat.wall()
            self.limit_row(2, f"{label}: reinit time vs cat of the data",
                           f"reinit {fmt_s(rei.wall())}, cat {fmt_s(cat.wall())}",
                           f"{ratio:.3g}x", "≤ 3x", ratio <= 3)
        if not rei.error and not fsync.error:
            self.info_row(2, f"{label}: reinit time vs cat + fsync of the copy",
                          f"reinit {fmt_s(rei.wall())}, cat+fsync {fmt_s(fsync.wall())}",
                          f"{rei.wall() / fsync.wall():.3g}x")
        if not rei.error:
            self.limit_row(2, f"{label}: reinit peak RSS", f"reinit {fmt_bytes(rei.rss())}",
                           f"{rei.rss() / (256 * MIB):.3g}x the limit", "≤ 256 MiB",
                           rei.rss() <= 256 * MIB)

    # ---- target 5 ------------------------------------------------------------------------------
    def target5(self, name, model, external):
        label = f"{name}.onnx"
        base = os.path.join(self.scratch, "t5")
        ref_dir = os.path.join(base, "threads1")
        log(f"[5] {label}: reinit --threads 1, 2, 3")
        problems = []
        files = []
        for threads in (1, 2, 3):
            out_dir = os.path.join(base, f"threads{threads}")
            self.clear(out_dir)
            self.warm([model])
            c = Contender(f"reinit --threads {threads}",
                          self.reinit_cmd(model, os.path.join(out_dir, name + ".onnx"), threads,
                                          external), out_dir)
            sample, tail = self.launch(f"t5.{name}.{threads}", c.cmd)
            c.error = self.failed(sample, tail)
            if c.error:
                self.error_row(5, label, c)
                problems = None
                break
            log(f"  [t5] --threads {threads}: {fmt_s(sample.wall)}, "
                f"peak RSS {fmt_bytes(sample.rss)}")
            if threads == 1:
                files = self.files_in(ref_dir)
                check = [os.path.join(ref_dir, name + ".onnx")]
                if sum(os.path.getsize(os.path.join(ref_dir, f)) for f in files) > 512 * MIB:
                    check.append("--no-data")
                rc, out = self.python("check_output.py", *check)
                if rc != 0:
                    problems.append(out.replace("\n", "; ")[:300])
            else:
                mine = self.files_in(out_dir)
                if mine != files:
                    problems.append(f"--threads {threads} wrote {mine}, --threads 1 {files}")
                for f in sorted(set(mine) & set(files)):
                    d = self.first_difference(os.path.join(ref_dir, f), os.path.join(out_dir, f))
                    if d:
                        problems.append(f"{f}: --threads {threads} vs 1: {d}")
                self.clear(out_dir)
            os.sync()
        shutil.rmtree(base, ignore_errors=True)
        os.sync()
        if problems is not None:
            self.check_row(5, f"{label}: byte-identical for --threads 1, 2, 3",
                           "; ".join(problems) if problems else f"identical ({', '.join(files)})",
                           not problems, "identical")

    # ---- targets 3 and 4 -----------------------------------------------------------------------
    @staticmethod
    def parse(text, metric, key, threads, size=None):
        """The median of `key` over lines `METRIC ... threads=N ... key=V` (threads and size
        optional on the line; a line naming other threads or another size is ignored)."""
        exact, loose = [], []
        for line in text.splitlines():
            tokens = line.split()
            if not tokens or tokens[0] != metric:
                continue
            # key=number, anything after the number (a unit) ignored
            fields = dict(re.findall(r"(\w+)=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)", line))
            dims = re.search(r"\b(\d+)x(\d+)\b", line)
            if size and dims and (int(dims[1]), int(dims[2])) != (size, size):
                continue
            try:
                value = float(fields[key])
            except (KeyError, ValueError):
                continue
            if "threads" not in fields:
                loose.append(value)
            elif fields["threads"] == str(threads):
                exact.append(value)
        values = exact or loose
        return statistics.median(values) if values else None

    def bench_exe(self, target, label, cmd, metric, key, size=None, torch_cmd=None,
                  torch_rounds=None):
        """Runs a micro-benchmark (and PyTorch's counterpart) interleaved; returns
        (median, torch median) or None when it did not run."""
        a = self.args
        tag = f"t{target}"
        exe = os.path.basename(cmd[0])
        runs = {exe: [], "torch": []}
        torch_rounds = a.repeat if torch_rounds is None else torch_rounds
        for r in range(a.repeat):
            for who, c, n in ((exe, cmd, a.repeat), ("torch", torch_cmd, torch_rounds)):
                if c is None or r >= n or runs[who] is None:
                    continue
                sample, tail = self.launch(f"{tag}.{who}", c)
                err = self.failed(sample, tail)
                with open(os.path.join(self.scratch, "logs", f"{tag}.{who}.out")) as f:
                    text = f.read()
                value = None if err else self.parse(text, metric, key, a.threads, size)
                if value is None and not err:
                    err = (f"no line `{metric} ... threads={a.threads} ... {key}=...` in its "
                           f"output: {text.strip()[-300:]!r}")
                if err:
                    self.errors.append(f"{label}: {who}: {err}")
                    self.rows.append((target, label, f"{who} failed to run (see below)",
                                      "", "", "ERROR", "error"))
                    runs[who] = None
                    continue
                runs[who].append(value)
                log(f"  [{tag}] round {r + 1} {who}: {key} {value:.4g}")
        if not runs[exe]:
            return None
        torch = statistics.median(runs["torch"]) if runs["torch"] else None
        return statistics.median(runs[exe]), torch

    def target3(self):
        a = self.args
        exe = os.path.join(a.bench_dir, "rng_bench")
        label = f"rng_bench normal f32, threads={a.threads}"
        if not os.access(exe, os.X_OK):
            self.skip_row(3, label, f"not built ({exe})")
            return
        log(f"[3] {label}; {a.repeat} rounds")
        # --smoke: 2^20 values (16 pieces) instead of rng_bench's 2^26, as for torch.
        n = 1 << 20 if a.smoke else 1 << 26
        torch_cmd = None
        if self.torch:
            torch_cmd = [PY, os.path.join(HERE, "torch_ref.py"), "rng", "--threads",
                         str(a.threads), "--n", str(n)]
        got = self.bench_exe(3, label, [exe, "--threads", str(a.threads), "--values", str(n)],
                             "normal_f32", "values_per_s", torch_cmd=torch_cmd)
        if got is None:
            return
        rate, torch = got
        measured = f"{rate:.3g} values/s" + (f" (torch {torch:.3g})" if torch else "")
        ratio = f"{rate / torch:.3g}x torch" if torch else "torch not run"
        self.limit_row(3, label, measured, ratio, "≥ 1e9 values/s", rate >= 1e9)

    def target4(self):
        a = self.args
        exe = os.path.join(a.bench_dir, "orthogonal_bench")
        n = a.orthogonal_size
        label = f"orthogonal_bench {n}x{n} f32, threads={a.threads}"
        if not os.access(exe, os.X_OK):
            self.skip_row(4, label, f"not built ({exe})")
            return
        log(f"[4] {label}; {a.repeat} rounds" + ("" if a.no_torch_orthogonal or not self.torch
                                                  else ", torch once"))
        torch_cmd = None
        if self.torch and not a.no_torch_orthogonal:
            torch_cmd = [PY, os.path.join(HERE, "torch_ref.py"), "orthogonal", "--threads",
                         str(a.threads), "--size", str(n)]
        got = self.bench_exe(4, label,
                             [exe, "--size", str(n), "--threads", str(a.threads)],
                             "orthogonal_f32", "seconds", size=n, torch_cmd=torch_cmd,
                             torch_rounds=1)
        if got is None:
            return
        seconds, torch = got
        measured = fmt_s(seconds) + (f" (torch {fmt_s(torch)})" if torch else "")
        ratio = f"{torch / seconds:.3g}x faster than torch" if torch else "torch not run"
        self.limit_row(4, label, measured, ratio, "≤ 3 s" + (" at 4096" if n != 4096 else ""),
                       seconds <= 3)


# ---- setup ---------------------------------------------------------------------------------
def machine(args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ram = "?"
    try:
        with open("/proc/meminfo") as f:
            ram = fmt_bytes(int(f.readline().split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    fs = subprocess.run(["stat", "-f", "-c", "%T", args.models_dir], capture_output=True,
                        text=True).stdout.strip() or "?"
    free = shutil.disk_usage(args.models_dir).free
    return (f"{cpu}, {os.cpu_count()} cores, {ram} RAM, Linux {platform.release()}, "
            f"{fmt_bytes(free)} free on {args.models_dir} ({fs})")


def commit():
    def git(*a):
        p = subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain",
                                                        "--untracked-files=no") else "")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def disk_needed(args, targets):
    """Peak bytes the run keeps on disk at one time: one model at a time (all of them with
    --keep-models), with its outputs (target 1's first round keeps reinit's and the
    baseline's output beside a copy of cat's; target 2 has reinit's output or a copy; target 5
    keeps --threads 1's output beside another)."""
    w = max(64, int(round((args.size_gib * GIB / (args.mlp_layers * 4)) ** 0.5 / 64)) * 64)
    mlp = args.mlp_layers * w * w * 4
    llm = int(args.llm_gib * GIB * 1.05)
    phases = []
    if targets & {1, 5}:
        phases.append(("mlp", mlp, 3 * mlp if 1 in targets else 2 * mlp))
    if targets & {2, 5}:
        for name in LLM_MODELS:
            phases.append((name, llm, 2 * llm if 5 in targets else llm))
    peak, kept = 0, 0
    for _, size, work in phases:
        peak = max(peak, kept + size + work)
        if args.keep_models:
            kept += size
    return peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See bench/README.md.")
    ap.add_argument("--reinit", default=os.path.join(REPO, "build", "reinit"),
                    help="the reinit binary (default: build/reinit)")
    ap.add_argument("--bench-dir", help="where rng_bench and orthogonal_bench are (default: "
                    "bench/ beside the reinit binary)")
    ap.add_argument("--models-dir", default=os.path.join(REPO, "build", "bench-models"),
                    help="models, outputs and logs (default: build/bench-models)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each contender (default 5)")
    ap.add_argument("--llm-repeat", type=int, help="runs on the LLM models (default: "
                    "--repeat, at most 3)")
    ap.add_argument("--only", default="1,2,3,4,5", help="targets to run, e.g. 1,5")
    ap.add_argument("--size-gib", type=float, default=1.0, help="target 1's model (default 1)")
    ap.add_argument("--mlp-layers", type=int, default=16)
    ap.add_argument("--llm-gib", type=float, default=8.0,
                    help="weights of each LLM model (default 8)")
    ap.add_argument("--llm-layers", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--orthogonal-size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2, help="reinit's and the benches' "
                    "--threads in targets 1-4 (default 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--no-torch", action="store_true", help="never run PyTorch")
    ap.add_argument("--no-torch-orthogonal", action="store_true",
                    help="skip PyTorch's orthogonal_ (1-2 minutes)")
    ap.add_argument("--smoke", action="store_true", help="tiny models, one round; checks that "
                    "everything runs and outputs are right, judges no speed")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a limit is not met")
    ap.add_argument("--keep-models", action="store_true",
                    help="keep the models for the next run (rebuilt only when options change)")
    ap.add_argument("--report", help="also write the table to this file")
    args = ap.parse_args()
    if args.smoke:
        args.repeat, args.llm_repeat = 1, 1
        args.size_gib, args.llm_gib, args.llm_layers, args.vocab = 1 / 1024, 1 / 256, 2, 1000
        args.orthogonal_size = 256
        args.timeout = min(args.timeout, 300)
    if args.llm_repeat is None:
        args.llm_repeat = min(args.repeat, 3)
    try:
        targets = {int(t) for t in args.only.split(",") if t.strip()}
    except ValueError:
        ap.error(f"--only takes target numbers 1-5, not '{args.only}'")
    if not targets or not targets <= {1, 2, 3, 4, 5} or args.repeat < 1 or args.llm_repeat < 1:
        ap.error("--only takes target numbers 1-5; --repeat and --llm-repeat at least 1")
    args.reinit = os.path.abspath(args.reinit)
    args.models_dir = os.path.abspath(args.models_dir)
    args.bench_dir = os.path.abspath(args.bench_dir or
                                     os.path.join(os.path.dirname(args.reinit), "bench"))
    if not os.access(args.reinit, os.X_OK):
        print(f"run.py: no reinit binary at {args.reinit}: build it first "
              "(cmake -S . -B build && cmake --build build -j2) or pass --reinit",
              file=sys.stderr)
        return 2
    p = subprocess.run([PY, "-c", "import numpy, onnx"], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"skipped: python3-onnx and python3-numpy are needed: "
              f"{p.stderr.strip().splitlines()[-1:]}")
        return 77
    need = disk_needed(args, targets) + (64 * MIB if args.smoke else GIB)
    existing = sum(os.path.getsize(os.path.join(r, f))
                   for r, _, fs in os.walk(args.models_dir) for f in fs)
    where = args.models_dir
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    free = shutil.disk_usage(where).free
    if free + existing < need:
        print(f"run.py: not enough disk: these targets keep up to {fmt_bytes(need)} in "
              f"{args.models_dir} at once (with a margin), and {fmt_bytes(free + existing)} is "
              "free there; use --only, a smaller --llm-gib or --size-gib, or another "
              "--models-dir", file=sys.stderr)
        return 2
    os.makedirs(args.models_dir, exist_ok=True)

    bench = Bench(args)
    bench.clear(bench.scratch)
    if not args.no_torch and targets & {3, 4}:
        bench.torch = subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0
    floor, _ = bench.launch("floor", ["/bin/true"])
    started = time.time()
    load_start = loadavg()
    info = machine(args)
    head = commit()  # now: the tree may change while the benchmark runs
    log(f"reinit benchmark: targets {sorted(targets)}; {info}")

    try:
        if 3 in targets:
            bench.target3()
        if 4 in targets:
            bench.target4()
        if targets & {1, 5}:
            model, _ = bench.model("mlp")
            if 1 in targets:
                bench.target1(model)
            if 5 in targets:
                bench.target5("mlp", model, external=False)
            bench.drop_model("mlp")
        if targets & {2, 5}:
            for name in LLM_MODELS:
                model, data = bench.model(name)
                if 2 in targets:
                    bench.target2(name, model, data)
                if 5 in targets:
                    bench.target5(name, model, external=True)
                bench.drop_model(name)
    finally:  # never leave gigabytes behind, whatever happened
        shutil.rmtree(bench.scratch, ignore_errors=True)
        for name in ("mlp",) + LLM_MODELS:
            bench.drop_model(name)
        if not args.keep_models:
            try:
                os.rmdir(args.models_dir)  # only if nothing else is left in it
            except OSError:
                pass

    version = subprocess.run([args.reinit, "--version"], capture_output=True,
                             text=True).stdout.strip()
    lines = [f"## reinit benchmark{' (smoke)' if args.smoke else ''}", "",
             f"- reinit: commit {head}, {version or args.reinit}",
             f"- machine: {info}",
             f"- load average: {load_start} at the start, {loadavg()} at the end; "
             f"run took {fmt_s(time.time() - started)}",
             f"- method: medians of {args.repeat} interleaved runs ({args.llm_repeat} on the "
             f"LLM models), page cache warm, outputs deleted and synced between runs; peak RSS "
             f"is the largest of the runs (launcher floor {fmt_bytes(floor.rss)}: a smaller "
             f"peak reads as the floor)",
             "", "| target | what | measured | ratio | limit | result |",
             "|---|---|---|---|---|---|"]
    for target, what, measured, ratio, limit, result, _ in sorted(bench.rows,
                                                                   key=lambda r: r[0]):
        lines.append(f"| {target} | {what} | {measured} | {ratio} | {limit} | {result} |")
    if bench.errors:
        lines += ["", "Failures:"] + [f"- {e}" for e in bench.errors]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    kinds = [(r[6], r[5]) for r in bench.rows]
    if any(k == "error" for k, _ in kinds) or any(k == "check" and v == "FAIL" for k, v in kinds):
        return 1
    if args.strict and any(k == "limit" and v == "FAIL" for k, v in kinds):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
