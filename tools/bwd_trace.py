#!/usr/bin/env python3
"""Reads tools/bwd_trace.cu's output and prints where the backward's key-side consumer warpgroups
spend their time: the share of every phase between two consecutive trace events of
bwd_mainloop.cuh (summed over the traced warpgroups, named "from -> to"), the median, 10th and
90th percentile of each phase per query-tile iteration, and how far the second consumer runs
behind the first. With --by-sm (for a trace taken with `bwd_trace D S OUTFILE sm:K`, whose slots
are the CTAs that ran on SM K in the order they started) it also prints, for each CTA after the
first, the gap from the previous CTA's last epilogue end to this CTA's first event, and how long
each CTA took.

Usage: bwd_trace.py [--by-sm] TRACEFILE
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fwd_trace import load, print_iterations  # noqa: E402  (the same file format)

NAMES = ["tile", "kvready", "qwait", "issued", "sready", "sigend", "dpready", "passend",
         "dkissued", "dkturn", "dkdv", "dqstaged", "epiend", "sturn"]
TILE = NAMES.index("tile")  # a work tile begins (value: its iterations)
EPI_END = NAMES.index("epiend")  # the work tile's dK and dV written


def name(event):
    return NAMES[event] if event < len(NAMES) else f"event{event}"


def main(argv):
    by_sm = len(argv) == 3 and argv[1] == "--by-sm"
    if len(argv) != 2 and not by_sm:
        print(__doc__, file=sys.stderr)
        return 2
    d, s, ms, consumers, ev = load(argv[-1])
    print(f"D={d} S={s}: {ms:.4f} ms per call (timed apart from the traced call), "
          f"{consumers} consumers per CTA")
    total = defaultdict(int)
    per_iteration = defaultdict(list)
    span = 0
    tiles = 0
    for events in ev.values():
        if len(events) < 2:
            continue
        span += events[-1][0] - events[0][0]
        tiles += sum(1 for e in events if e[1] == 0)
        for (ta, ea, va), (tb, eb, _) in zip(events, events[1:]):
            phase = f"{name(ea)} -> {name(eb)}"
            total[phase] += tb - ta
            per_iteration[phase].append(tb - ta)
    if span == 0:
        print("no events (a build without the hook?)")
        return 1
    print(f"traced warpgroups: {sum(1 for e in ev.values() if e)}, work tiles: {tiles}, "
          f"cycles traced in all: {span}")
    print(f"  {'phase':28s} {'share':>7s} {'count':>7s} {'median':>7s} {'p10':>7s} {'p90':>7s}")
    for phase, cycles in sorted(total.items(), key=lambda kv: -kv[1]):
        v = sorted(per_iteration[phase])
        print(f"  {phase:28s} {100.0 * cycles / span:6.2f}% {len(v):7d} {v[len(v) // 2]:7d}"
              f" {v[len(v) // 10]:7d} {v[9 * len(v) // 10]:7d}")
    # The iteration: one qwait event to the next inside a work tile.
    print_iterations(ev, 2, "query-tile iteration (qwait to qwait)")
    print_offsets(ev, consumers)
    if by_sm:
        print_sm_gaps(ev, consumers)
    return 0


def print_sm_gaps(ev, consumers):
    """Slot k is the k-th CTA on one SM (one clock): the cycles from the end of CTA k's last
    epilogue (the later consumer's) to CTA k + 1's first event (the earlier consumer's, its work
    tile's start), and from CTA k's start to its end, with its query-tile iterations. The clock is
    32 bits wide, so differences are taken modulo 2^32."""
    ctas = sorted({key[0] for key, events in ev.items() if events})
    rows = []
    for cta in ctas:
        firsts = [ev[(cta, c)][0] for c in range(consumers) if ev.get((cta, c))]
        ends = [t for c in range(consumers) for t, e, _ in ev.get((cta, c), []) if e == EPI_END]
        if not firsts or not ends:
            continue
        start = min(firsts, key=lambda x: x[0])
        rows.append((cta, start[0], max(ends), start[2] if start[1] == TILE else -1))
    if len(rows) < 2:
        print("by SM: fewer than two complete CTAs")
        return
    print("by SM: CTA  iterations  start-to-end  gap-before (cycles; none after a missing CTA)")
    gaps = []
    for i, (cta, start, end, its) in enumerate(rows):
        span = (end - start) % (1 << 32)
        consecutive = i > 0 and rows[i - 1][0] == cta - 1
        gap = (start - rows[i - 1][2]) % (1 << 32) if consecutive else None
        if gap is not None:
            gaps.append(gap)
        print(f"  {cta:3d} {its:6d} {span:10d} {'' if gap is None else gap:>10}")
    if not gaps:
        print("by SM: no two consecutive complete CTAs")
        return
    g = sorted(gaps)
    print(f"gap between consecutive CTAs on the SM: median {g[len(g) // 2]}, min {g[0]}, "
          f"max {g[-1]} cycles ({len(g)} gaps)")


def print_offsets(ev, consumers):
    """How far consumer 1 runs behind consumer 0 of the same CTA: for each event of the loop, the
    median, 10th and 90th percentile of its time in consumer 1 minus in consumer 0, in the same
    query-tile iteration (near 0: lockstep; near half an iteration: ping-pong)."""
    if consumers < 2:
        return
    offsets = defaultdict(list)
    for cta in sorted({key[0] for key in ev}):
        at = []
        for c in (0, 1):
            first, it = {}, None
            for t, e, v in ev.get((cta, c), []):
                if e == 2:  # qwait carries the iteration
                    it = v
                if it is not None and e >= 2 and e != 12:
                    first.setdefault((e, it), t)
            at.append(first)
        for key, t0 in at[0].items():
            if key in at[1]:
                offsets[key[0]].append(at[1][key] - t0)
    if offsets:
        print("consumer 1 minus consumer 0, same iteration: event median p10 p90")
    for e in sorted(offsets):
        v = sorted(offsets[e])
        print(f"  {name(e):10s} {v[len(v) // 2]:7d} {v[len(v) // 10]:7d} {v[9 * len(v) // 10]:7d}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
