#!/usr/bin/env python3
"""The dense bf16 matrix-product rate of this GPU through PyTorch (cuBLAS), burst and steady.

    python3 bench/matmul_peak.py [--sizes 4096,8192,16384] [--warmup-ms 1000] [--rep-ms 300]

The attention kernels' TFLOP/s mean most beside what a plain product reaches on the same board in
the same clock state. For each size N this times C = A B (N x N x N, bf16 in, bf16 out, inputs
N(0, 1)) twice: "burst" after two warm-up runs only (the clock the idle board starts from), and
"steady" after products for about --warmup-ms (the clock under the board's power limit, as
sigattn_bench's and compare.py's default timing). Times: CUDA events, the median of the runs that
fit in --rep-ms (at least 5; 20 ms at most for the burst). FLOP: 2 N^3. While the timed runs
execute, NVML samples the SM clock and the board power every 5 ms (bench/nvml_clock.py); the table
gives their means (- without NVML). Output: a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvml_clock import NvmlClock  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="4096,8192,16384", help="comma-separated N")
    p.add_argument("--warmup-ms", type=float, default=1000.0,
                   help="products for about this long before the steady timing")
    p.add_argument("--rep-ms", type=float, default=300.0, help="timing budget per row")
    p.add_argument("--cooldown-ms", type=float, default=1000.0,
                   help="idle time before each burst timing")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not args.sizes or min(args.sizes) <= 0:
        p.error("--sizes takes positive integers")
    return args


def time_product(torch, clock, a, b, c, warmup_ms, rep_ms):
    """Median ms of c = a @ b after two runs and about warmup_ms of products; (ms, MHz, W)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(2):
        torch.matmul(a, b, out=c)
    start.record()
    torch.matmul(a, b, out=c)
    end.record()
    end.synchronize()
    estimate = max(start.elapsed_time(end), 1e-3)
    for _ in range(int(min(100000, warmup_ms / estimate))):
        torch.matmul(a, b, out=c)
    reps = max(5, int(rep_ms / estimate))
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(reps)]
    clock.start()
    for s, e in events:
        s.record()
        torch.matmul(a, b, out=c)
        e.record()
    torch.cuda.synchronize()
    mhz, watts = clock.stop()
    return statistics.median(s.elapsed_time(e) for s, e in events), mhz, watts


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("matmul_peak: PyTorch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("matmul_peak: no CUDA device", file=sys.stderr)
        return 2
    print(f"# torch.matmul bf16 on {torch.cuda.get_device_name(0)} (torch {torch.__version__}, "
          f"CUDA {torch.version.cuda})\n")
    print(f"Burst: after {args.cooldown_ms:.0f} ms idle and two warm-up runs, timed over 20 ms; "
          f"steady: after about {args.warmup_ms:.0f} ms of products, timed over "
          f"{args.rep_ms:.0f} ms. Medians; SM MHz and W: means of NVML samples during the "
          f"timed runs.\n")
    print("| N | mode | ms median | TFLOP/s | SM MHz | W |")
    print("|---|---|---|---|---|---|")
    fmt = lambda x: "-" if x is None else f"{x:.0f}"
    clock = NvmlClock.for_torch_device(torch, 0)
    for n in args.sizes:
        gen = torch.Generator(device="cuda").manual_seed(n)
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=gen)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=gen)
        c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
        for mode, warmup in (("burst", 0.0), ("steady", args.warmup_ms)):
            torch.cuda.synchronize()
            if mode == "burst":
                time.sleep(args.cooldown_ms / 1000.0)
            # (A short burst: a long one would reach the power limit while it is timed.)
            rep_ms = min(args.rep_ms, 20.0) if mode == "burst" else args.rep_ms
            ms, mhz, watts = time_product(torch, clock, a, b, c, warmup, rep_ms)
            tflops = 2.0 * n ** 3 / (ms * 1e-3) / 1e12
            print(f"| {n} | {mode} | {ms:.3f} | {tflops:.0f} | {fmt(mhz)} | {fmt(watts)} |",
                  flush=True)
        del a, b, c
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
