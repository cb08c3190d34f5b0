#!/usr/bin/env python3
"""Reads tools/fwd_trace.cu's output and prints where the forward's consumer warpgroups spend
their time: the share of every phase between two of fwd_mainloop.cuh's trace events (summed over
the traced warpgroups), the work items' durations by key-tile count, the loop iteration's
duration, and with --gantt a text timeline of CTA 0's consumers over a window of SM cycles.

Usage: fwd_trace.py TRACEFILE [--gantt START_CYCLES LENGTH_CYCLES]
"""
import struct
import sys
from collections import defaultdict

NAMES = ["tile", "qready", "kvwait", "turnwait", "issued", "sready", "sigend", "pvready",
         "epiend"]


def load(path):
    with open(path, "rb") as f:
        d, s, ctas, maxc, maxe, consumers = struct.unpack("6i", f.read(24))
        (ms,) = struct.unpack("f", f.read(4))
        raw = f.read()
    ev = {}
    for cta in range(ctas):
        for c in range(consumers):
            base = (cta * maxc + c) * maxe * 8
            out, prev, hi = [], None, 0
            for i in range(maxe):
                clk, word = struct.unpack_from("II", raw, base + 8 * i)
                if clk == 0 and word == 0:
                    break
                if prev is not None and clk < prev:
                    hi += 1 << 32
                prev = clk
                out.append((clk + hi, word & 0xFF, word >> 8))
            ev[(cta, c)] = out
    return d, s, ms, consumers, ev


def print_iterations(ev, event, label):
    """The median, 10th and 90th percentile of the time from one `event` to the next when their
    values (iteration numbers) are consecutive, over all traced warpgroups."""
    it = []
    for events in ev.values():
        marks = [e for e in events if e[1] == event]
        for a, b in zip(marks, marks[1:]):
            if b[2] == a[2] + 1:
                it.append(b[0] - a[0])
    it.sort()
    if it:
        print(f"{label}: median {it[len(it) // 2]}, p10 {it[len(it) // 10]},"
              f" p90 {it[9 * len(it) // 10]}")


def phases(events):
    """Cycles per phase: the time from each event to the next is charged to a phase."""
    charge = defaultdict(int)
    label = {  # event -> the phase that follows it
        0: "tile->q", 1: "q->kwait0", 2: "kv wait", 3: "turn wait+issue", 4: "S wait",
        5: "sigmoid", 6: "PV wait", 7: "pack/next", 8: "after epilogue",
    }
    special = {  # (event, value) -> the phase, where the value names the prologue or the last P V
        (4, 2): "last PV wait", (7, 2): "epilogue", (3, 0): "turn+issue (first S)",
        (4, 0): "S wait (first S)", (5, 0): "sigmoid (first)", (6, 0): "after first sigmoid",
    }
    for (t0, e0, v0), (t1, e1, v1) in zip(events, events[1:]):
        name = special.get((e0, v0), label[e0])
        charge[name] += t1 - t0
    return charge


def main(argv):
    d, s, ms, consumers, ev = load(argv[1])
    print(f"D={d} S={s}: {ms:.4f} ms per launch (median), {consumers} consumers")
    total = defaultdict(int)
    span = 0
    tiles = []
    for key, events in sorted(ev.items()):
        if len(events) < 2:
            continue
        ch = phases(events)
        for k, v in ch.items():
            total[k] += v
        span += events[-1][0] - events[0][0]
        # work items: time from one tile event to the next, and its key tiles (loop iterations+1)
        starts = [i for i, e in enumerate(events) if e[1] == 0]
        for a, b in zip(starts, starts[1:]):
            n_iter = sum(1 for e in events[a:b] if e[1] == 2)
            tiles.append((n_iter, events[b][0] - events[a][0]))
    print(f"traced warpgroups: {len(ev)}, cycles traced in all: {span}")
    for k, v in sorted(total.items(), key=lambda kv: -kv[1]):
        per_item = v / max(1, len(tiles))
        print(f"  {k:22s} {100.0 * v / span:6.2f}%   {per_item:10.0f} cycles per work item")
    by_n = defaultdict(list)
    for n, t in tiles:
        by_n[n].append(t)
    print("a warpgroup's work items by its key tiles: count, median cycles, per key tile")
    for n in sorted(by_n):
        v = sorted(by_n[n])
        med = v[len(v) // 2]
        print(f"  {n:4d}: {len(v):5d}  {med:9d}  {med / max(n, 1):8.0f}")
    # Medians over the loop's iterations (value 1 events) of three phases.
    spans = {"sigmoid": [], "turn wait and issue": [], "after the sigmoid": []}
    for events in ev.values():
        for i, (t, e, v) in enumerate(events[:-1]):
            if v != 1:
                continue
            if e == 5 and events[i + 1][1] == 6:
                spans["sigmoid"].append(events[i + 1][0] - t)
            if e == 3 and events[i + 1][1] == 4:
                spans["turn wait and issue"].append(events[i + 1][0] - t)
            if e == 6:
                nxt = next((x for x in events[i + 1:] if x[1] == 2), None)
                if nxt is not None:
                    spans["after the sigmoid"].append(nxt[0] - t)
    for name, v in spans.items():
        if v:
            v.sort()
            print(f"  {name} per iteration: median {v[len(v) // 2]}, p10 {v[len(v) // 10]},"
                  f" p90 {v[9 * len(v) // 10]}")
    # steady-state iteration time: KvWait to KvWait inside a tile
    print_iterations(ev, 2, "loop iteration (kvwait to kvwait)")
    if "--gantt" in argv:
        i = argv.index("--gantt")
        start, length = int(argv[i + 1]), int(argv[i + 2])
        bins = 120
        sym = {0: "T", 1: "Q", 2: "k", 3: ".", 4: "s", 5: "#", 6: "p", 7: "-", 8: "e"}
        cta0 = [k for k in ev if k[0] == 0]
        t0 = min(ev[k][0][0] for k in cta0) + start
        for key in sorted(cta0):
            row = [" "] * bins
            events = ev[key]
            for (ta, ea, va), (tb, _, _) in zip(events, events[1:]):
                for bidx in range(bins):
                    bt = t0 + bidx * length / bins
                    if ta <= bt < tb:
                        row[bidx] = sym[ea] if not (ea == 4 and va == 2) else "P"
            print(f"c{key[1]} |" + "".join(row) + "|")
        print("legend: T tile info, Q q ready, k kv wait, . turn wait, s S wait, # sigmoid,"
              " p PV wait, - pack, P last PV wait, e after epilogue")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
