#!/usr/bin/python3
"""PyTorch's figures for the benchmark's targets 3 and 4, printed like the C++ micro-benchmarks.

Usage:  /usr/bin/python3 bench/torch_ref.py rng [--threads 2] [--n 67108864] [--reps 3]
        /usr/bin/python3 bench/torch_ref.py orthogonal [--threads 2] [--size 4096]

  rng         torch.empty(n).normal_() after torch.set_num_threads(THREADS): one untimed call,
              then REPS timed calls; prints the median as
              `normal_f32 threads=T values_per_s=V`.
  orthogonal  torch.nn.init.orthogonal_ on an empty SIZE x SIZE float32 tensor, timed once (it
              is slow: 1-2 minutes at 4096 on two cores); prints
              `orthogonal_f32 SxS threads=T seconds=S`.

Only the work itself is timed, not importing torch. Exits 77 where torch cannot be imported.
"""

import argparse
import statistics
import sys
import time

try:
    import torch
except ImportError as e:
    print(f"skipped: {e}", file=sys.stderr)
    sys.exit(77)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    rng = sub.add_parser("rng")
    rng.add_argument("--threads", type=int, default=2)
    rng.add_argument("--n", type=int, default=1 << 26)
    rng.add_argument("--reps", type=int, default=3)
    orth = sub.add_parser("orthogonal")
    orth.add_argument("--threads", type=int, default=2)
    orth.add_argument("--size", type=int, default=4096)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.what == "rng":
        t = torch.empty(args.n, dtype=torch.float32)
        t.normal_()
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            t.normal_()
            times.append(time.perf_counter() - start)
        rate = args.n / statistics.median(times)
        print(f"normal_f32 threads={args.threads} values_per_s={rate:.4g}")
    else:
        t = torch.empty(args.size, args.size, dtype=torch.float32)
        start = time.perf_counter()
        torch.nn.init.orthogonal_(t)
        seconds = time.perf_counter() - start
        print(f"orthogonal_f32 {args.size}x{args.size} threads={args.threads} "
              f"seconds={seconds:.4g}")


if __name__ == "__main__":
    main()
