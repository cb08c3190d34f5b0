#!/usr/bin/env python3
"""Side-by-side comparison on one GPU, in one run, through PyTorch.

    python3 bench/compare.py [--quick] [--json FILE] [--seqlens 512,1024] [--hdims 64,128]
                             [--methods sigattn,sdpa-flash,sdpa-cudnn,eager-sigmoid,triton-sigmoid]

Shapes as sigattn_bench and SPEC section 6 use them: 16,384 tokens per batch (B = 16384 / S),
hidden size 2048 (H = 2048 / D query and key/value heads), S from 512 to 16,384, D 64 and 128,
bf16, dense (every sequence full), non-causal, inputs N(0, 1), layout [B, S, H, D].

Chart: python3 bench/compare.py --plot compare.json -o docs/compare.png (matplotlib; no torch).

Methods:
  sigattn         this library, through the PyTorch extension in examples/pytorch (sigmoid,
                  bias -log(S), the accurate sigmoid)
  sdpa-flash      torch.nn.functional.scaled_dot_product_attention, flash backend (softmax)
  sdpa-cudnn      the same, cuDNN backend (softmax)
  eager-sigmoid   sigmoid(scale * Q K^T - log S) V written with torch.matmul, the [B, H, S, S]
                  scores materialised in bf16 (what one would write without a fused kernel)
  triton-sigmoid  the TritonSigmoid package (import triton_sigmoid; its dense
                  sigmoid_attention, default bias -log S and its default fast tanh.approx
                  sigmoid), when importable. Its autotuning is restricted to the first
                  --triton-configs configs (default 2) of its own list per kernel that appear in
                  the preference list below, to keep the run short: every config costs one Triton
                  compile per (D, length bucket). --triton-configs 0 keeps its whole list.

The softmax rows are the speed reference a user would otherwise pick; they compute a different
function. FLOP are counted on the real tokens (all tokens here): forward 4 * B * H * S^2 * D,
backward 2.5 times that, forward+backward 3.5 times. Times: CUDA events, a 256 MiB buffer
overwritten before each timed run (L2 flushed), two warm-up runs, then flushed warm-up runs for
about --warmup-ms (so that each method is timed at its own steady clock under the board's power
limit, whatever ran before it), then the median of as many runs as fit in --rep-ms (at least 3).
SM clock: the mean of NVML readings every 5 ms during the timed runs (bench/nvml_clock.py; - where
NVML is unavailable), in the JSON with the board power (a lagging average).
Memory: torch.cuda.max_memory_allocated() after reset_peak_memory_stats(), around one call; the tables show the peak minus what was allocated
before the call (inputs, dO and the flush buffer are excluded; the outputs, saved activations,
gradients, workspaces and temporaries are in). Out-of-memory is caught and shown as OOM; a backend
that refuses the shape is n/a. Output: markdown tables on stdout, progress on stderr, and with
--json FILE every row (rewritten after each one).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nvml_clock import NvmlClock  # noqa: E402
METHODS = ("sigattn", "sdpa-flash", "sdpa-cudnn", "eager-sigmoid", "triton-sigmoid")
SIGMOID_METHODS = ("sigattn", "eager-sigmoid", "triton-sigmoid")

# TritonSigmoid configs, most preferred first, as (BLOCK_M, BLOCK_N, num_warps, num_stages); all
# are in the package's own Hopper lists. Only those found in the package's list are kept.
TRITON_PREFERENCE = {
    "_fwd_dense_kernel": [(128, 64, 4, 3), (64, 64, 4, 3), (128, 128, 4, 2), (64, 128, 4, 3)],
    "_bwd_dense_dq_kernel": [(128, 64, 4, 3), (64, 64, 4, 3), (64, 128, 4, 3), (128, 32, 4, 3)],
    "_bwd_dense_dkdv_kernel": [(64, 128, 4, 2), (64, 64, 4, 3), (128, 64, 4, 2), (32, 128, 4, 3)],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="S 1024,4096, D 128, shorter timing")
    p.add_argument("--json", metavar="FILE", help="also write every row as JSON")
    p.add_argument("--seqlens", help="comma-separated S (default 512,...,16384)")
    p.add_argument("--hdims", help="comma-separated D (default 64,128)")
    p.add_argument("--tokens", type=int, default=16384, help="tokens per batch: B = tokens / S")
    p.add_argument("--hidden", type=int, default=2048, help="hidden size: H = hidden / D")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    p.add_argument("--rep-ms", type=float, default=None, help="timing budget per row (default 100)")
    p.add_argument("--warmup-ms", type=float, default=None,
                   help="flushed warm-up runs for about this long before each row's timed runs "
                        "(default 1000; 100 with --quick; 0: only the two warm-up runs and "
                        "the one that sizes the timing)")
    p.add_argument("--triton-configs", type=int, default=2,
                   help="TritonSigmoid configs kept per kernel (0: its whole list)")
    p.add_argument("--plot", metavar="JSON",
                   help="measure nothing: chart the rows of a --json file (needs matplotlib)")
    p.add_argument("-o", "--output", default="compare.png", help="PNG written by --plot")
    args = p.parse_args(argv)
    ints = lambda s: [int(x) for x in s.split(",") if x.strip()]
    args.seqlens = ints(args.seqlens) if args.seqlens else (
        [1024, 4096] if args.quick else [512, 1024, 2048, 4096, 8192, 16384])
    args.hdims = ints(args.hdims) if args.hdims else ([128] if args.quick else [64, 128])
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in args.methods:
        if m not in METHODS:
            p.error(f"unknown method {m!r} (known: {', '.join(METHODS)})")
    if args.rep_ms is None:
        args.rep_ms = 50.0 if args.quick else 100.0
    if args.warmup_ms is None:
        args.warmup_ms = 100.0 if args.quick else 1000.0
    if not 0.0 <= args.warmup_ms <= 60000.0:
        p.error("--warmup-ms takes 0 to 60000 milliseconds")
    return args


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def git_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or os.environ.get("SIGATTN_COMMIT", "unknown")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SIGATTN_COMMIT", "unknown")


def package_version(dist, module):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001  (a wheel unpacked without metadata)
        return getattr(module, "__version__", "?")


def cudnn_version(torch):
    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except Exception:  # noqa: BLE001  (only a header field)
        return None


class Interrupted(BaseException):
    """SIGTERM during the sweep (a BaseException, so the per-row `except Exception` lets it by)."""


class Unavailable(Exception):
    """A method that cannot run this shape (a backend refusing it); shown as n/a."""


def main(argv=None):
    args = parse_args(argv)
    if args.plot:
        return plot(args.plot, args.output)
    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        log("compare.py: no CUDA device; nothing to compare")
        return 2
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    dtype = torch.bfloat16

    # --- The methods -------------------------------------------------------------------------
    unavailable = {}  # method -> reason it is skipped entirely
    impls = {}
    if "sigattn" in args.methods:
        try:
            sys.path.insert(0, str(ROOT / "examples" / "pytorch"))
            import sigattn_torch

            impls["sigattn"] = lambda q, k, v: sigattn_torch.sigmoid_attention(q, k, v)
        except Exception as e:  # noqa: BLE001  (a failed build must not hide the other rows)
            unavailable["sigattn"] = f"extension failed to load: {type(e).__name__}: {e}"

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        SDPBackend = sdpa_kernel = None
        for m in ("sdpa-flash", "sdpa-cudnn"):
            unavailable[m] = f"torch.nn.attention: {e}"

    def sdpa(backend):
        def run(q, k, v):
            with sdpa_kernel([backend]):
                try:
                    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                                       v.transpose(1, 2))
                except torch.cuda.OutOfMemoryError:
                    raise
                except RuntimeError as e:  # "No available kernel", an unsupported shape
                    raise Unavailable(str(e).strip().splitlines()[0]) from None
            return o.transpose(1, 2)
        return run

    if sdpa_kernel is not None:
        impls["sdpa-flash"] = sdpa(SDPBackend.FLASH_ATTENTION)
        impls["sdpa-cudnn"] = sdpa(SDPBackend.CUDNN_ATTENTION)

    def eager_sigmoid(q, k, v):
        s_len, d = q.shape[1], q.shape[3]
        qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))
        p = torch.sigmoid(torch.matmul(qh, kh.transpose(-1, -2)) * (1.0 / math.sqrt(d))
                          - math.log(s_len))
        return torch.matmul(p, vh).transpose(1, 2)

    impls["eager-sigmoid"] = eager_sigmoid

    triton_note = None
    if "triton-sigmoid" in args.methods:
        try:
            import triton_sigmoid
            from triton_sigmoid import sigmoid_triton_dense as ts_dense

            kept = []
            for name, prefs in TRITON_PREFERENCE.items():
                kernel = getattr(ts_dense, name)
                if args.triton_configs <= 0:
                    kept.append(f"{name}: all {len(kernel.configs)}")
                    continue
                key = lambda c: (c.kwargs.get("BLOCK_M"), c.kwargs.get("BLOCK_N"), c.num_warps,
                                 c.num_stages)
                by_key = {key(c): c for c in kernel.configs}
                chosen = [by_key[p] for p in prefs if p in by_key][: args.triton_configs]
                if chosen:
                    kernel.configs = chosen
                kept.append(f"{name}: {len(kernel.configs)} ({', '.join('x'.join(map(str, key(c))) for c in kernel.configs)})")
            triton_note = (f"triton-sigmoid {package_version('triton-sigmoid', triton_sigmoid)}, "
                           f"autotuning over: {'; '.join(kept)} (BLOCK_M x BLOCK_N x warps x stages)")
            impls["triton-sigmoid"] = lambda q, k, v: triton_sigmoid.sigmoid_attention(q, k, v)
        except Exception as e:  # noqa: BLE001  (ImportError, or its import-time device checks)
            unavailable["triton-sigmoid"] = f"not importable: {type(e).__name__}: {e}"

    methods = [m for m in args.methods if m not in unavailable]
    for m, why in unavailable.items():
        if m in args.methods:
            log(f"compare.py: skipping {m}: {why}")

    # --- Timing and memory -------------------------------------------------------------------
    flush = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device=dev)
    clock = NvmlClock.for_torch_device(torch, dev)

    def cleanup():
        gc.collect()
        torch.cuda.empty_cache()

    def measure(fn, grads):
        """(median, min, max ms, runs, peak bytes, bytes allocated before, mean SM MHz and W
        during the timed runs) of fn()."""
        def reset():
            for t in grads:
                t.grad = None
        for _ in range(2):  # warm-up (JIT, autotuning, plan caches)
            fn()
            reset()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        flush.zero_()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        reset()
        estimate = max(start.elapsed_time(end), 1e-3)
        # Time-based warm-up, as sigattn_bench's --warmup-ms: flushed runs for about warmup_ms,
        # so that every method is timed at its own steady clock under the board's power limit.
        for _ in range(int(min(100000, args.warmup_ms / estimate))):
            reset()
            flush.zero_()
            fn()
        runs = int(min(100, max(3, args.rep_ms / estimate)))
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(runs)]
        clock.start()
        for s, e in events:
            reset()
            flush.zero_()
            s.record()
            fn()
            e.record()
        torch.cuda.synchronize()
        mhz, watts = clock.stop()
        times = [s.elapsed_time(e) for s, e in events]
        reset()
        cleanup()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        reset()
        return statistics.median(times), min(times), max(times), runs, peak, base, mhz, watts

    # --- The sweep ---------------------------------------------------------------------------
    props = torch.cuda.get_device_properties(dev)
    meta = {
        "device": props.name,
        "device_memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn_version(torch),
        "python": platform.python_version(),
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tokens": args.tokens,
        "hidden": args.hidden,
        "dtype": "bf16",
        "rep_ms": args.rep_ms,
        "warmup_ms": args.warmup_ms,
        "methods": methods,
        "skipped": {m: unavailable[m] for m in args.methods if m in unavailable},
        "triton": triton_note,
    }
    try:
        import triton

        meta["triton_version"] = triton.__version__
    except ImportError:
        meta["triton_version"] = None
    rows = []

    def save():
        if args.json:
            Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")

    # A SIGTERM (from `timeout`, say) ends the sweep early but still prints the rows measured.
    def on_sigterm(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_sigterm)
    t_start = time.time()
    try:
        sweep(args, impls, methods, measure, cleanup, rows, save, dev, dtype)
    except (Interrupted, KeyboardInterrupt):
        meta["interrupted"] = True
        log("compare.py: interrupted; printing the rows measured so far")
    meta["seconds"] = round(time.time() - t_start, 1)
    save()
    print(render_markdown(meta, rows, methods, args))
    return 0


def sweep(args, impls, methods, measure, cleanup, rows, save, dev, dtype):
    import torch

    for d in args.hdims:
        heads = args.hidden // d
        for s_len in args.seqlens:
            batch = max(1, args.tokens // s_len)
            fwd_flop = 4.0 * batch * heads * s_len * s_len * d
            gen = torch.Generator(device=dev).manual_seed(s_len * 1000 + d)
            q, k, v, dout = (torch.randn(batch, s_len, heads, d, generator=gen, device=dev,
                                         dtype=dtype) for _ in range(4))
            reference_out = None  # sigattn's forward output, for the sanity column
            for method in methods:
                fn = impls[method]
                for direction in ("fwd", "fwd+bwd"):
                    row = {"d": d, "s": s_len, "batch": batch, "heads": heads, "method": method,
                           "direction": direction, "status": "ok", "note": None}
                    flop = fwd_flop * (1.0 if direction == "fwd" else 3.5)
                    row["flop"] = flop
                    try:
                        if direction == "fwd":
                            def call():
                                with torch.no_grad():
                                    return fn(q, k, v)
                            grads = []
                        else:
                            qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                            grads = [qg, kg, vg]

                            def call():
                                fn(qg, kg, vg).backward(dout)
                        med, lo, hi, runs, peak, base, mhz, watts = measure(call, grads)
                        row.update(ms_median=med, ms_min=lo, ms_max=hi, runs=runs,
                                   tflops=flop / (med * 1e-3) / 1e12, peak_bytes=peak,
                                   base_bytes=base, extra_bytes=peak - base, sm_mhz=mhz,
                                   watts=watts)
                        if direction == "fwd" and method in SIGMOID_METHODS:
                            with torch.no_grad():
                                out = fn(q, k, v)
                            if method == "sigattn":
                                reference_out = out
                            elif reference_out is not None:
                                diff = (out.float() - reference_out.float()).norm()
                                row["rel_diff_vs_sigattn"] = (
                                    diff / reference_out.float().norm()).item()
                            del out
                    except torch.cuda.OutOfMemoryError:
                        row["status"] = "OOM"
                    except Unavailable as e:
                        row["status"], row["note"] = "n/a", str(e)
                    except Exception as e:  # noqa: BLE001  (report it, go on with the sweep)
                        row["status"], row["note"] = "error", f"{type(e).__name__}: {e}".splitlines()[0]
                    finally:
                        grads = None
                        cleanup()
                    rows.append(row)
                    save()
                    if row["status"] == "ok":
                        log(f"D={d:3d} S={s_len:5d} B={batch:3d} {method:15s} {direction:8s} "
                            f"{row['ms_median']:9.3f} ms {row['tflops']:7.1f} TFLOP/s "
                            f"extra {row['extra_bytes'] / 2**30:6.2f} GiB")
                    else:
                        log(f"D={d:3d} S={s_len:5d} B={batch:3d} {method:15s} {direction:8s} "
                            f"{row['status']} {row['note'] or ''}")
            del q, k, v, dout, reference_out
            cleanup()


def _cell(row, value_key, fmt):
    if row is None:
        return "-"
    if row["status"] != "ok":
        return row["status"]
    value = row.get(value_key)
    return "-" if value is None else fmt(value)


def render_markdown(meta, rows, methods, args):
    lines = []
    lines.append(f"# sigattn vs PyTorch: {meta['device']}, {meta['date']}, commit {meta['commit']}")
    lines.append("")
    lines.append(f"torch {meta['torch']} (CUDA {meta['cuda']}, cuDNN {meta['cudnn']}), "
                 f"triton {meta['triton_version']}, python {meta['python']}; bf16, dense, "
                 f"non-causal, {meta['tokens']} tokens per batch (B = {meta['tokens']} / S), "
                 f"hidden {meta['hidden']} (H = {meta['hidden']} / D); after about "
                 f"{meta.get('warmup_ms', 0):.0f} ms of warm-up runs, median of CUDA-event timed "
                 f"runs within {meta['rep_ms']:.0f} ms per row, L2 flushed before each; "
                 f"{meta['seconds']} s in all."
                 + (" **Interrupted: the sweep did not finish.**" if meta.get("interrupted") else ""))
    lines.append("")
    lines.append("TFLOP/s on real tokens: forward 4 B H S^2 D, forward+backward 3.5 times that. "
                 "sdpa-* compute softmax attention (the speed reference), the others sigmoid "
                 "attention with bias -log S. Memory: peak of one call minus what was allocated "
                 "before it (GiB).")
    if meta["triton"]:
        lines.append("")
        lines.append(f"TritonSigmoid: {meta['triton']}; its default sigmoid is the fast tanh.approx "
                     "one, sigattn's the accurate one.")
    for m, why in meta["skipped"].items():
        lines.append("")
        lines.append(f"Skipped {m}: {why}")
    index = {(r["d"], r["s"], r["method"], r["direction"]): r for r in rows}
    shapes = sorted({(r["d"], r["s"], r["batch"], r["heads"]) for r in rows})
    tables = [
        ("Forward, TFLOP/s", "fwd", "tflops", lambda x: f"{x:.0f}"),
        ("Forward + backward, TFLOP/s", "fwd+bwd", "tflops", lambda x: f"{x:.0f}"),
        ("Forward, extra memory at peak (GiB)", "fwd", "extra_bytes", lambda x: f"{x / 2**30:.2f}"),
        ("Forward + backward, extra memory at peak (GiB)", "fwd+bwd", "extra_bytes",
         lambda x: f"{x / 2**30:.2f}"),
        ("Forward, SM clock during the timed runs (MHz, NVML mean)", "fwd", "sm_mhz",
         lambda x: f"{x:.0f}"),
        ("Forward + backward, SM clock during the timed runs (MHz, NVML mean)", "fwd+bwd",
         "sm_mhz", lambda x: f"{x:.0f}"),
    ]
    for title, direction, key, fmt in tables:
        lines.append("")
        lines.append(f"## {title}")
        lines.append("")
        lines.append("| D | S | B | H | " + " | ".join(methods) + " |")
        lines.append("|---|---|---|---|" + "---|" * len(methods))
        for d, s, b, h in shapes:
            cells = [_cell(index.get((d, s, m, direction)), key, fmt) for m in methods]
            lines.append(f"| {d} | {s} | {b} | {h} | " + " | ".join(cells) + " |")
    ratios = []
    for d, s, b, h in shapes:
        for direction in ("fwd", "fwd+bwd"):
            ours = index.get((d, s, "sigattn", direction))
            if not ours or ours["status"] != "ok":
                continue
            parts = []
            for m in methods:
                other = index.get((d, s, m, direction))
                if m != "sigattn" and other and other["status"] == "ok":
                    parts.append(f"{m} {other['ms_median'] / ours['ms_median']:.2f}x")
            if parts:
                ratios.append(f"| {d} | {s} | {direction} | " + ", ".join(parts) + " |")
    if ratios:
        lines.append("")
        lines.append("## Speed-up of sigattn (other method's time / sigattn's time)")
        lines.append("")
        lines.append("| D | S | direction | ratios |")
        lines.append("|---|---|---|---|")
        lines.extend(ratios)
    diffs = [r for r in rows if r.get("rel_diff_vs_sigattn") is not None]
    if diffs:
        lines.append("")
        lines.append("Sanity check, forward output relative L2 difference from sigattn's: " + "; ".join(
            f"{r['method']} D={r['d']} S={r['s']}: {r['rel_diff_vs_sigattn']:.1e}" for r in diffs))
    problems = {}  # (method, status, note) -> where
    for r in rows:
        if r["status"] in ("error", "n/a") and r["note"]:
            where = problems.setdefault((r["method"], r["status"], r["note"]), [])
            where.append(f"D={r['d']} S={r['s']} {r['direction']}")
    if problems:
        lines.append("")
        lines.append("Notes:")
        for (method, status, note), where in problems.items():
            lines.append(f"- {method}, {status}: {note} ({', '.join(where)})")
    return "\n".join(lines)


METHOD_STYLES = {"sigattn": ("tab:red", "-"), "sdpa-flash": ("tab:blue", "--"),
                 "sdpa-cudnn": ("tab:cyan", "--"), "eager-sigmoid": ("tab:gray", ":"),
                 "triton-sigmoid": ("tab:green", "-")}


def plot(json_path, output):
    """TFLOP/s against S, one panel per (direction, D), one line per method."""
    try:  # imported here so that the script compiles and measures without matplotlib
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("compare.py: --plot needs matplotlib (python3 -m pip install matplotlib)")
        return 1
    data = json.loads(Path(json_path).read_text())
    meta, rows = data["meta"], [r for r in data["rows"] if r["status"] == "ok"]
    if not rows:
        log(f"compare.py: no measured rows in {json_path}")
        return 1
    dims = sorted({r["d"] for r in rows})
    directions = [d for d in ("fwd", "fwd+bwd") if any(r["direction"] == d for r in rows)]
    fig, axes = plt.subplots(len(directions), len(dims), figsize=(6 * len(dims), 4.5 * len(directions)),
                             squeeze=False)
    for i, direction in enumerate(directions):
        for j, d in enumerate(dims):
            ax = axes[i][j]
            for method in meta["methods"]:
                pts = sorted((r["s"], r["tflops"]) for r in rows
                             if r["method"] == method and r["direction"] == direction and r["d"] == d)
                if pts:
                    color, style = METHOD_STYLES.get(method, (None, "-"))
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color,
                            linestyle=style, label=method)
            ax.set_xscale("log", base=2)
            svals = sorted({r["s"] for r in rows})
            ax.set_xticks(svals, [str(x) for x in svals])
            ax.set_xlabel("S (B = %d / S)" % meta["tokens"])
            ax.set_ylabel("TFLOP/s")
            ax.set_title(f"{'forward' if direction == 'fwd' else 'forward + backward'}, D = {d}")
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"{meta['device']}, bf16, dense, non-causal, hidden {meta['hidden']} "
                 f"(sdpa-*: softmax), commit {meta['commit']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    log(f"compare.py: wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
