#!/usr/bin/env bash
# Alternated A/B runs of sigattn_bench builds on one GPU, then bench/ab.py's table.
#
#   bench/ab_run.sh LOGDIR NAME=BINARY NAME=BINARY [...] -- BENCH_ARGS...
#
# Runs every build once in the order given, then once in the reverse order (A B B A for two
# builds, A B C C B A for three), each with BENCH_ARGS and --json LOGDIR/NAME.1.json or .2.json;
# the benchmark's progress goes to LOGDIR/progress.log (a failed or timed-out run is noted there
# and left out of the table). Then `bench/ab.py` compares the builds against the first one:
# LOGDIR/ab.txt, also printed. AB_TIMEOUT (seconds per run, default 300) bounds each run.
# Under the GPU's power limit a row's clock depends on what ran before it: the alternation puts
# the builds in both positions. LOGDIR stays flat: 2 files per build plus two.
set -uo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 LOGDIR NAME=BINARY NAME=BINARY [...] -- BENCH_ARGS..." >&2
  exit 2
fi
mkdir -p "$1"
LOGDIR=$(cd "$1" && pwd)
shift
names=()
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    *=*) names+=("${1%%=*}"); bins+=("${1#*=}") ;;
    *) echo "$0: expected NAME=BINARY, got '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ $# -eq 0 ] || [ ${#names[@]} -lt 2 ]; then
  echo "$0: two or more NAME=BINARY, then -- and the benchmark's arguments" >&2
  exit 2
fi
shift  # the --
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "$0: not an executable: $b" >&2; exit 2; }
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${AB_TIMEOUT:-300}

order=()
for i in "${!names[@]}"; do order+=("$i:1"); done
for ((i = ${#names[@]} - 1; i >= 0; i--)); do order+=("$i:2"); done
: > "$LOGDIR/progress.log"
for entry in "${order[@]}"; do
  i=${entry%%:*}
  run=${entry#*:}
  json="$LOGDIR/${names[$i]}.$run.json"
  echo "== ${names[$i]} run $run: ${bins[$i]} $*" >> "$LOGDIR/progress.log"
  timeout "$TIMEOUT" "${bins[$i]}" "$@" --json "$json" > /dev/null 2>> "$LOGDIR/progress.log"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "== ${names[$i]} run $run failed or timed out (exit $rc)" >> "$LOGDIR/progress.log"
    rm -f "$json"
  fi
done

specs=()
for i in "${!names[@]}"; do
  files=()
  for run in 1 2; do
    [ -f "$LOGDIR/${names[$i]}.$run.json" ] && files+=("$LOGDIR/${names[$i]}.$run.json")
  done
  if [ ${#files[@]} -eq 0 ]; then
    echo "$0: no run of ${names[$i]} completed (see $LOGDIR/progress.log)" | tee "$LOGDIR/ab.txt"
    exit 1
  fi
  specs+=("${names[$i]}=$(IFS=,; echo "${files[*]}")")
done
python3 "$HERE/ab.py" "${specs[@]}" | tee "$LOGDIR/ab.txt"
