#!/usr/bin/env python3
"""Compares the main loops of the same kernels in two SASS dumps.

For every kernel whose mangled name contains FILTER and that appears in both dumps, takes the
instructions from its first to its last HGMMA (the Hopper kernels' main loops), replaces register,
predicate and convergence-barrier numbers and hexadecimal immediates by placeholders (decimal and
floating-point immediates stay), and prints the instruction counts of both and the similarity of
the two sequences: difflib's ratio to three decimals, or "same" when the normalised loops are
equal (the same code but for register allocation). Then the same for the iteration's own loop,
as "inner OLD -> NEW RATIO": of the loops closed by a predicated backward branch, those that hold
an HGMMA and no smaller such loop, the one with the most HGMMAs (ties: the longest). In a kernel
whose main loop sits inside another loop (the persistent key side of session 28) the
first-to-last span covers the outer loop as well; the inner loop is the iteration. Kernels are
matched by architecture and name (a dump of a build for several architectures holds one cubin per
architecture). A change outside a loop can move ptxas's schedule inside it, and that moved the
backward's key side by 2-4.5% in session 21 (docs/performance.md); this is the check to run
before a bench A/B.

Usage:
  cuobjdump --dump-sass OLD_BINARY > old.sass
  cuobjdump --dump-sass NEW_BINARY > new.sass
  python3 tools/sass_loop_compare.py old.sass new.sass [FILTER]   (FILTER default: sm90_bwd_kernel)
Exit status 0; kernels without HGMMA, or in one dump only, are listed as such. A name seen twice
for one architecture (several objects in one dump) is refused.
"""
import difflib
import re
import sys


def read_functions(path):
    """Maps "ARCH NAME" (as "sm_90a _ZN...") to the function's SASS as (address, instruction)."""
    functions, current, arch = {}, None, "?"
    with open(path) as f:
        for line in f:
            m = re.search(r"code for (sm_\w+)", line)
            if m:
                arch, current = m.group(1), None
                continue
            m = re.search(r"Function : (\S+)", line)
            if m:
                key = f"{arch} {m.group(1)}"
                if key in functions:
                    sys.exit(f"{path}: {key} appears twice (several objects in one dump?)")
                current = functions[key] = []
                continue
            m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
            if m and current is not None:
                current.append((int(m.group(1), 16), m.group(2).strip()))
    return functions


def normalise(instruction):
    instruction = re.sub(r"0x[0-9a-f]+", "X", instruction)
    instruction = re.sub(r"\bU?R\d+\b", "R", instruction)
    instruction = re.sub(r"\bU?P\d\b", "P", instruction)
    return re.sub(r"\bB\d+\b", "B", instruction)


def main_loop(instructions):
    """The normalised instructions from the first HGMMA to the last, or None without HGMMA."""
    norm = [normalise(i) for _, i in instructions]
    at = [k for k, i in enumerate(norm) if "HGMMA" in i]
    return norm[at[0]:at[-1] + 1] if at else None


def inner_loop(instructions):
    """The normalised instructions of the innermost backward-branch loop with the most HGMMAs
    (see the top of the file), or None without such a loop."""
    index = {address: k for k, (address, _) in enumerate(instructions)}
    # (first, last) instruction indices of each loop that a predicated backward branch closes (an
    # unpredicated one is the return from an out-of-line block, such as a barrier's retry, into
    # the middle of the code it left, not the end of a loop)
    loops = []
    for k, (address, text) in enumerate(instructions):
        m = re.match(r"@!?U?P\d BRA(?:\.\S+)? (?:\S+, )?0x([0-9a-f]+)", text)
        target = int(m.group(1), 16) if m else None
        if target is not None and target < address and target in index:
            loops.append((index[target], k))
    hgmma = [k for k, (_, text) in enumerate(instructions) if "HGMMA" in text]
    count = {loop: sum(loop[0] <= k <= loop[1] for k in hgmma) for loop in loops}
    with_hgmma = [loop for loop in loops if count[loop] > 0]
    inner = [loop for loop in with_hgmma
             if not any(o != loop and loop[0] <= o[0] and o[1] <= loop[1] for o in with_hgmma)]
    if not inner:
        return None
    first, last = max(inner, key=lambda loop: (count[loop], loop[1] - loop[0]))
    return [normalise(text) for _, text in instructions[first:last + 1]]


def similarity(a, b):
    return "same " if a == b else \
        f"{difflib.SequenceMatcher(None, a, b, autojunk=False).ratio():.3f}"


def main(argv):
    if len(argv) not in (3, 4):
        print("Usage:" + __doc__.split("Usage:")[1], file=sys.stderr)
        return 2
    old, new = read_functions(argv[1]), read_functions(argv[2])
    pattern = argv[3] if len(argv) == 4 else "sm90_bwd_kernel"
    names = sorted(n for n in set(old) | set(new) if pattern in n)
    if not names:
        print(f"no kernel matching '{pattern}' in either dump")
    for name in names:
        if name not in new or name not in old:
            print(f"  -    only in {argv[1] if name in old else argv[2]}: {name}")
            continue
        a, b = main_loop(old[name]), main_loop(new[name])
        if a is None or b is None:
            print(f"  -    no HGMMA: {name}")
            continue
        ia, ib = inner_loop(old[name]), inner_loop(new[name])
        inner = (f"inner {len(ia)} -> {len(ib)} {similarity(ia, ib).strip()}"
                 if ia is not None and ib is not None else "inner -")
        print(f"{similarity(a, b)}  loop {len(a)} -> {len(b)}  {inner}  kernel "
              f"{len(old[name])} -> {len(new[name])}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
