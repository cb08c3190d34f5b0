#!/usr/bin/env python3
"""Plot sigattn_bench results: real-token TFLOP/s against the padded length S.

    python3 bench/plot.py bench.json -o docs/perf.png

One panel per (direction, head dim), one line per (path, ragged mode); when the JSON holds more
than one dtype or causal setting, those join the line labels. Rows that did not run (OOM, path
not available) are left out.
"""

import argparse
import json
import sys
from collections import defaultdict


def load_rows(path):
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)
    return [r for r in rows if r.get("status") == "ok" and r.get("tflops_real") is not None]


PATH_COLORS = {"hopper": "tab:red", "portable": "tab:blue", "baseline": "tab:gray"}
RAGGED_STYLES = {"dense": "-", "uniform": "--", "pad25": ":"}


def line_key(row, varying):
    """(label, colour, line style) of the line a row belongs to."""
    parts = [row["path"], row["ragged"]]
    if "dtype" in varying:
        parts.append(row["dtype"])
    if "causal" in varying:
        parts.append("causal" if row["causal"] else "non-causal")
    return (
        " ".join(parts),
        PATH_COLORS.get(row["path"]),
        RAGGED_STYLES.get(row["ragged"], "-"),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="file written by sigattn_bench --json")
    parser.add_argument("-o", "--output", default="perf.png", help="PNG to write")
    args = parser.parse_args(argv)

    try:  # imported here so that the script compiles (and --help runs) without matplotlib
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: needs matplotlib (python3 -m pip install matplotlib)", file=sys.stderr)
        return 1

    rows = load_rows(args.json)
    if not rows:
        print(f"plot.py: no measured rows in {args.json}", file=sys.stderr)
        return 1

    varying = {key for key in ("dtype", "causal") if len({r[key] for r in rows}) > 1}
    dirs = [d for d in ("fwd", "bwd") if any(r["dir"] == d for r in rows)]
    head_dims = sorted({r["head_dim"] for r in rows})

    fig, axes = plt.subplots(
        len(dirs), len(head_dims), figsize=(6 * len(head_dims), 4.5 * len(dirs)), squeeze=False
    )
    for i, direction in enumerate(dirs):
        for j, head_dim in enumerate(head_dims):
            ax = axes[i][j]
            lines = defaultdict(dict)  # (label, colour, style) -> {S: TFLOP/s}
            for r in rows:
                if r["dir"] == direction and r["head_dim"] == head_dim:
                    lines[line_key(r, varying)][r["max_len"]] = r["tflops_real"]
            for key in sorted(lines, key=lambda k: k[0]):
                label, color, style = key
                points = sorted(lines[key].items())
                ax.plot([s for s, _ in points], [t for _, t in points], linestyle=style,
                        color=color, marker="o", label=label)
            ax.set_xscale("log", base=2)
            seqlens = sorted({s for line in lines.values() for s in line})
            if seqlens:
                ax.set_xticks(seqlens)
                ax.set_xticklabels([str(s) for s in seqlens])
            ax.set_title(f"{direction}, D = {head_dim}")
            ax.set_xlabel("padded length S")
            ax.set_ylabel("TFLOP/s on real tokens")
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            if lines:
                ax.legend(fontsize="small")

    first = rows[0]
    fig.suptitle(f"sigattn_bench on {first['device']} (commit {first['commit']}, {first['date']})")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"plot.py: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
