#!/usr/bin/env bash
# The PyTorch extension on a GPU machine, in one script:
#
#   bash examples/pytorch/run_gpu.sh OUTDIR
#
# From the repository root (wherever it is called from):
#   1. build   builds the extension (sigattn::fwd, sigattn::bwd) for sm_90a only, MAX_JOBS=16;
#              OUTDIR/build.log
#   2. pytest  python3 -m pytest -q examples/pytorch/tests; OUTDIR/pytest.log
#   3. compare python3 bench/compare.py --json OUTDIR/compare.json > OUTDIR/compare.md
#              (progress in OUTDIR/compare.log)
# plus OUTDIR/env.txt (GPU, driver, versions) and OUTDIR/summary.txt (also printed).
#
# Wheels: .whl/*.whl (TritonSigmoid) are installed into /tmp/site and put on PYTHONPATH, and so
# are .whl/pytest/*.whl when pytest is not installed (the GPU machine has no network). .whl is
# git-ignored: a run on another machine must carry it. Without it compare.py skips TritonSigmoid
# and, where pytest is missing, the pytest step says so.
#
# Environment: SIGATTN_TORCH_ARCH (default 90a), MAX_JOBS (default 16), PYTEST_ARGS (extra pytest
# arguments), COMPARE_ARGS (extra compare.py arguments, e.g. --quick), and per-step time limits
# BUILD_TIMEOUT, PYTEST_TIMEOUT, COMPARE_TIMEOUT in seconds (default 150, 190, 240: the three
# together stay under ten minutes; a comparison cut short still prints the rows it measured). A later step runs even when an earlier one failed, except that
# nothing runs after a failed build. The exit status is non-zero when any step failed.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2

export MAX_JOBS=${MAX_JOBS:-16}
export SIGATTN_TORCH_ARCH=${SIGATTN_TORCH_ARCH:-90a}
export PATH="/usr/local/cuda/bin:$PATH"
export PYTHONPATH="$ROOT/examples/pytorch${PYTHONPATH:+:$PYTHONPATH}"
SIGATTN_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export SIGATTN_COMMIT
BUILD_TIMEOUT=${BUILD_TIMEOUT:-150}
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-190}
COMPARE_TIMEOUT=${COMPARE_TIMEOUT:-240}

summary=()
failed=()
note() { summary+=("$*"); echo "run_gpu: $*"; }

# Installs wheels into /tmp/site: pip when it works, else unzip (they are pure-Python wheels).
install_wheels() {
  mkdir -p /tmp/site
  if ! python3 -m pip install -q --upgrade --no-index --no-deps --target /tmp/site "$@" 2>>"$OUT/env.txt"; then
    local w
    for w in "$@"; do python3 -m zipfile -e "$w" /tmp/site || return 1; done
  fi
}

# --- Environment ----------------------------------------------------------------------------------
{
  echo "commit $SIGATTN_COMMIT; date $(date -u '+%Y-%m-%d %H:%M UTC'); nproc $(nproc)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version 2>&1 | tail -n 2
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name())' 2>&1
  python3 -c 'import triton; print("triton", triton.__version__)' 2>&1 | tail -n 1
  echo "ninja: $(command -v ninja || python3 -c 'import ninja; print("python package")' 2>/dev/null || echo 'none (direct compiler calls)')"
} >"$OUT/env.txt" 2>&1

shopt -s nullglob
extra=(.whl/*.whl)
if [ ${#extra[@]} -gt 0 ]; then
  if install_wheels "${extra[@]}"; then
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
    note "installed ${extra[*]##*/} into /tmp/site"
  else
    note "could not install ${extra[*]##*/}"
  fi
fi
if ! python3 -c 'import pytest' 2>/dev/null; then
  wheels=(.whl/pytest/*.whl)
  if [ ${#wheels[@]} -gt 0 ] && install_wheels "${wheels[@]}"; then
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
    note "pytest was missing; installed it from .whl/pytest"
  fi
fi
shopt -u nullglob

# --- 1. Build ---------------------------------------------------------------------------------------
start=$SECONDS
if SIGATTN_TORCH_VERBOSE=1 timeout "$BUILD_TIMEOUT" python3 -m sigattn_torch >"$OUT/build.log" 2>&1; then
  note "build: ok in $((SECONDS - start)) s: $(tail -n 1 "$OUT/build.log")"
else
  note "build: FAILED after $((SECONDS - start)) s (last lines of build.log below)"
  tail -n 30 "$OUT/build.log"
  failed+=(build)
fi

if [ ${#failed[@]} -eq 0 ]; then
  # --- 2. Tests ------------------------------------------------------------------------------------
  start=$SECONDS
  if ! python3 -c 'import pytest' 2>/dev/null; then
    note "pytest: NOT RUN: pytest is not installed (and no .whl/pytest wheels)"
    failed+=(pytest)
  else
    # shellcheck disable=SC2086
    timeout "$PYTEST_TIMEOUT" python3 -m pytest -q -p no:cacheprovider -rfEs --durations=8 \
      examples/pytorch/tests ${PYTEST_ARGS:-} >"$OUT/pytest.log" 2>&1
    rc=$?
    line=$(grep -E '[0-9]+ (passed|failed|skipped|error)' "$OUT/pytest.log" | tail -n 1)
    note "pytest: exit $rc in $((SECONDS - start)) s: ${line:-no summary line (timeout?)}"
    [ $rc -eq 0 ] || failed+=(pytest)
  fi

  # --- 3. Comparison ---------------------------------------------------------------------------------
  start=$SECONDS
  # shellcheck disable=SC2086
  timeout "$COMPARE_TIMEOUT" python3 bench/compare.py --json "$OUT/compare.json" ${COMPARE_ARGS:-} \
    >"$OUT/compare.md" 2>"$OUT/compare.log"
  rc=$?
  note "compare: exit $rc in $((SECONDS - start)) s; $(grep -c . "$OUT/compare.log") progress lines"
  [ $rc -eq 0 ] || failed+=(compare)
fi

{
  printf '%s\n' "${summary[@]}"
  if [ ${#failed[@]} -eq 0 ]; then echo "run_gpu: all steps passed"; else echo "run_gpu: FAILED: ${failed[*]}"; fi
} >"$OUT/summary.txt"
echo "run_gpu: files in $OUT:" "$OUT"/*
[ ${#failed[@]} -eq 0 ]
