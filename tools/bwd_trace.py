#!/usr/bin/env python3
"""Reads tools/bwd_trace.cu's output and prints where the backward's key-side consumer warpgroups
spend their time: the share of every phase between two consecutive trace events of
bwd_mainloop.cuh (summed over the traced warpgroups, named "from -> to"), and the median, 10th and
90th percentile of each phase per query-tile iteration.

Usage: bwd_trace.py TRACEFILE
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fwd_trace import load, print_iterations  # noqa: E402  (the same file format)

NAMES = ["tile", "kvready", "qwait", "issued", "sready", "sigend", "dpready", "passend",
         "dkissued", "dkturn", "dkdv", "dqstaged", "epiend", "sturn"]


def name(event):
    return NAMES[event] if event < len(NAMES) else f"event{event}"


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d, s, ms, consumers, ev = load(argv[1])
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
