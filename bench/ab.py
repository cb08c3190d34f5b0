#!/usr/bin/env python3
"""Side by side: sigattn_bench's JSON files of two or more builds, each run one or more times,
for an A/B comparison of kernels (run the builds alternated, for example M N N M, so that the
board's clock and power state fall on both alike).

    python3 bench/ab.py M=m1.json,m2.json N=n1.json,n2.json [--csv]

For every row (the rows are matched by their shape: path, direction, deterministic, dtype,
sigmoid, head dim, length, batch, ragged, causal) it prints each build's mean TFLOP/s (real tokens)
over its runs, each build's ratio to the first build, and the SM clock that NVML read during the
row (the mean over the build's runs); then the geometric mean of the ratios per head dim and over
every row. A row missing from a build, or with a non-ok status in any of its runs, is left out of
the ratios and named. Only the standard library.
"""
import argparse
import json
import math
import sys
from collections import OrderedDict

KEY = ("path", "dir", "deterministic", "dtype", "sigmoid", "head_dim", "max_len", "batch",
       "ragged", "causal")


def row_key(row):
    return tuple(row.get(k) for k in KEY)


def label(key):
    d = dict(zip(KEY, key))
    text = "%s %s%s %s D=%s S=%s %s%s" % (
        d["path"], d["dir"], "-det" if d["deterministic"] else "", d["dtype"], d["head_dim"],
        d["max_len"], d["ragged"], " causal" if d["causal"] else "")
    if d["sigmoid"] not in (None, "accurate"):
        text += " " + str(d["sigmoid"])
    return text


def load_build(spec):
    """NAME=FILE[,FILE...] -> (name, {key: [rows of each run]})."""
    if "=" not in spec:
        raise SystemExit("ab.py: expected NAME=FILE[,FILE...], got %r" % spec)
    name, files = spec.split("=", 1)
    rows = OrderedDict()
    for path in files.split(","):
        with open(path) as f:
            data = json.load(f)
        for row in data if isinstance(data, list) else data.get("rows", []):
            rows.setdefault(row_key(row), []).append(row)
    return name, rows


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("builds", nargs="+", help="NAME=FILE[,FILE...], the first the reference")
    parser.add_argument("--csv", action="store_true", help="comma-separated rows instead")
    args = parser.parse_args(argv)
    if len(args.builds) < 2:
        parser.error("at least two builds")
    builds = [load_build(spec) for spec in args.builds]
    names = [name for name, _ in builds]
    ref_name, ref = builds[0]
    ratios = {name: OrderedDict() for name in names[1:]}
    skipped = []
    header = ["row"] + ["%s TFLOP/s" % n for n in names] + ["%s/%s" % (n, ref_name)
                                                            for n in names[1:]]
    header += ["%s MHz" % n for n in names]
    lines = []
    for key in ref:
        runs = [rows.get(key, []) for _, rows in builds]
        ok = all(runs_b and all(r.get("status") == "ok" for r in runs_b) for runs_b in runs)
        if not ok:
            skipped.append(label(key))
            continue
        means = [sum(r["tflops_real"] for r in runs_b) / len(runs_b) for runs_b in runs]
        clocks = [sum(r.get("sm_mhz") or 0 for r in runs_b) / len(runs_b) for runs_b in runs]
        cells = [label(key)] + ["%.1f" % m for m in means]
        for i, name in enumerate(names[1:], start=1):
            ratio = means[i] / means[0]
            ratios[name][key] = ratio
            cells.append("%.3f" % ratio)
        cells += ["%.0f" % c for c in clocks]
        lines.append(cells)
    if args.csv:
        print(",".join(header))
        for cells in lines:
            print(",".join(cells))
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
        for cells in [header] + lines:
            print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                            for i, (c, w) in enumerate(zip(cells, widths))))
    for name in names[1:]:
        by_dim = OrderedDict()
        for key, ratio in ratios[name].items():
            by_dim.setdefault(dict(zip(KEY, key))["head_dim"], []).append(ratio)
        parts = ["D=%s %.3f (%d rows)" % (d, geomean(v), len(v)) for d, v in by_dim.items()]
        values = list(ratios[name].values())
        span = " %.3f-%.3f" % (min(values), max(values)) if values else ""
        print("geomean %s/%s: %.3f over %d rows (%s%s)" % (
            name, ref_name, geomean(values), len(values), "; ".join(parts),
            ";" + span if span else ""))
    if skipped:
        print("left out (missing or not ok in a run): " + "; ".join(skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
