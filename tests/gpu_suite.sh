#!/usr/bin/env bash
# The GPU suite: everything that needs the GPU machine, in one script.
#
#   tests/gpu_suite.sh LOGDIR
#
# Steps (SUITE_STEPS, comma-separated, default "build,test,sanitize,bench"; they run in the order
# build, test, bench, tune, sanitize, profile whatever the order given):
#   build     configure (Release, ptxas -v) and build; LOGDIR/build.log, LOGDIR/ptxas.txt
#             (resources per kernel; a kernel whose wgmma ptxas serialised fails the run),
#             LOGDIR/sass_summary.txt (HGMMA/HMMA instruction counts per kernel)
#   test      ctest --output-on-failure (all but install_consumer, which CI covers); LOGDIR/ctest.log
#   sanitize  compute-sanitizer memcheck + racecheck on each GPU test, cases tagged [small];
#             LOGDIR/sanitizer.log
#   bench     build/.../bench/sigattn_bench $SUITE_BENCH_ARGS (default --quick)
#             --json LOGDIR/bench.json > LOGDIR/bench.md; the summary gives the range of the
#             rows' SM clocks (NVML, through the bench)
#   profile   (not a default step) ncu on one launch of each kernel family (SUITE_PROFILE_RUNS,
#             default "portable:fwd portable:bwd hopper:fwd hopper:bwd"; each may end in :D for
#             the head dim, default 128), with the warp stall reasons; LOGDIR/ncu.txt
#   tune      (not a default step; the build step then also builds bench/tune) the Hopper forward
#             tuning sweep, bench/tune/sigattn_tune_sm90 $SUITE_TUNE_ARGS; LOGDIR/tune.md
# A summary goes to stdout and LOGDIR/summary.txt. LOGDIR stays flat (at most 8 files).
# Later steps run even when earlier ones fail, except that nothing runs after a failed build; the
# exit status is non-zero when any step failed. The build directory persists between calls, so
# steps can be split across calls (SUITE_STEPS=build, then SUITE_STEPS=test,sanitize,bench).
#
# Environment: SIGATTN_ARCHS (default "90a-real;80-real"), SIGATTN_BUILD_DIR (default build/gpu),
# SUITE_JOBS (build jobs, default nproc), SUITE_CTEST_JOBS (default 4), SUITE_SANITIZER_TIMEOUT
# (seconds per sanitizer run, default 300), SUITE_SANITIZER_JOBS (sanitizer runs at a time on the
# one GPU, default 4: racecheck's time goes mostly to the host), SUITE_SANITIZE_TESTS (an extended
# regex: sanitize only the GPU test executables whose path matches it; default all),
# SIGATTN_COMMIT (reported when git is unavailable).
# Catch2 comes from .deps/catch2_*.deb (the machine has no network and no catch2 package).
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 LOGDIR" >&2
  exit 2
fi
mkdir -p "$1"
LOGDIR=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SIGATTN_BUILD_DIR:-$ROOT/build/gpu}
ARCHS=${SIGATTN_ARCHS:-90a-real;80-real}
STEPS=",${SUITE_STEPS:-build,test,sanitize,bench},"
JOBS=${SUITE_JOBS:-$(nproc)}
CTEST_JOBS=${SUITE_CTEST_JOBS:-4}
SANITIZER_TIMEOUT=${SUITE_SANITIZER_TIMEOUT:-300}
SANITIZER_JOBS=${SUITE_SANITIZER_JOBS:-4}
CATCH2_ROOT=/tmp/catch2
export PATH="/usr/local/cuda/bin:/usr/local/cuda/compute-sanitizer:$PATH"

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "${SIGATTN_COMMIT:-unknown}")
# A tree whose tracked files differ from HEAD is reported as such: the binaries are of those files.
if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1 &&
  ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
  COMMIT="$COMMIT+modified"
fi
export SIGATTN_COMMIT="$COMMIT"
failed=()
summary=()
note() { summary+=("$*"); }
has_step() { [[ "$STEPS" == *",$1,"* ]]; }

note "commit $COMMIT; steps ${STEPS:1:-1}; archs $ARCHS"
if command -v nvidia-smi >/dev/null 2>&1; then
  note "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 1)"
fi

# Executables of the GPU tests, one a line (written by tests/CMakeLists.txt).
gpu_tests() { [ -f "$BUILD/tests/gpu_tests.txt" ] && grep -v '^$' "$BUILD/tests/gpu_tests.txt"; }

unpack_catch2() {
  [ -f "$CATCH2_ROOT/usr/lib/cmake/Catch2/Catch2Config.cmake" ] && return 0
  local debs deb
  debs=("$ROOT"/.deps/catch2_*.deb)
  deb=${debs[0]}
  if [ ! -f "$deb" ]; then
    echo "no $ROOT/.deps/catch2_*.deb (.deps is git-ignored: carry it to this machine)"
    return 1
  fi
  mkdir -p "$CATCH2_ROOT"
  if command -v dpkg >/dev/null 2>&1; then
    dpkg -x "$deb" "$CATCH2_ROOT"
  else  # a .deb is an ar archive holding data.tar.<compression>; tar detects which
    local tmp status=0
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$deb") && tar -xf "$tmp"/data.tar.* -C "$CATCH2_ROOT" || status=1
    rm -rf "$tmp"
    return $status
  fi
}

step_build() {
  local log="$LOGDIR/build.log"
  : >"$log"
  if ! unpack_catch2 >>"$log" 2>&1; then
    note "build: FAILED: cannot unpack Catch2: $(tail -n 1 "$log")"
    return 1
  fi
  local generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  # An existing build dir keeps its generator; only pass one to a fresh directory.
  [ -f "$BUILD/CMakeCache.txt" ] && generator=()
  local tuning=OFF
  has_step tune && tuning=ON
  if ! cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS" -DSIGATTN_PTXAS_VERBOSE=ON \
      "-DSIGATTN_BUILD_TUNING=$tuning" \
      "-DCMAKE_PREFIX_PATH=$CATCH2_ROOT/usr" >>"$log" 2>&1; then
    note "build: FAILED at configure (see build.log)"
    return 1
  fi
  local start=$SECONDS rc=0
  cmake --build "$BUILD" -j "$JOBS" >>"$log" 2>&1 || rc=$?
  note "build: $([ $rc -eq 0 ] && echo ok || echo FAILED) in $((SECONDS - start)) s"

  # ptxas -v output of the TUs compiled in this build (an up-to-date TU prints nothing), one line
  # per kernel and architecture, kernels that spill first.
  ptxas_summary "$log" >"$LOGDIR/ptxas.txt"
  local entries spills
  entries=$(grep -vc '^#' "$LOGDIR/ptxas.txt")
  spills=$(awk '!/^#/ && ($3 > 0 || $4 > 0)' "$LOGDIR/ptxas.txt" | wc -l)
  if [ "$entries" -eq 0 ]; then
    note "ptxas: no resource lines (nothing recompiled?)"
  elif [ "$spills" -gt 0 ]; then
    note "ptxas: spills found: yes ($spills of $entries kernels, see ptxas.txt)"
  else
    note "ptxas: spills found: no ($entries kernels)"
  fi

  # ptxas may serialise every wgmma of a kernel (advisories C7510-C7519, "wgmma.mma_async
  # instructions are serialized due to ...": too few registers, a call inside the pipeline, ...).
  # The kernel stays correct, so no test sees it, but throughput fell 6-17% when it happened
  # (docs/performance.md, session 11). No kernel of the library may have it: the run's RESULT is
  # FAILED, and the later steps still run. Like the spill count, this sees only the translation
  # units compiled in this build.
  local serialized
  serialized=$(wgmma_serialized "$log")
  if [ -n "$serialized" ]; then
    sed 's/^/# wgmma serialized (ptxas C751x): /' <<<"$serialized" | cut -c1-260 \
      >>"$LOGDIR/ptxas.txt"
    note "ptxas: wgmma serialized: yes ($(wc -l <<<"$serialized") kernels, see ptxas.txt)"
    failed+=("build (wgmma serialized)")
  elif [ "$entries" -eq 0 ]; then
    note "ptxas: wgmma serialized: unknown (nothing recompiled)"
  else
    note "ptxas: wgmma serialized: no (in the $entries kernels compiled)"
  fi

  [ $rc -eq 0 ] && sass_summary
  return $rc
}

# The kernels whose wgmma ptxas serialised (advisories C7510-C7519), demangled, one a line.
wgmma_serialized() {
  grep -E 'wgmma\.mma_async instructions are serialized' "$1" |
    sed -E "s/.*function '([^']*)'.*/\1/" | sort -u | demangle
}

# "arch registers spill_stores spill_loads stack kernel" for every entry function in a build log.
ptxas_summary() {
  echo "# arch regs spill_st spill_ld stack kernel"
  awk '
    /Compiling entry function/ {
      split($0, q, "\047"); name = q[2]; arch = q[4]; props = ""; st = ld = stack = 0; next }
    /Function properties for/ { props = $NF; next }
    /bytes stack frame/ && props == name {
      stack = $1; st = $5; ld = $9; next }
    /Used [0-9]+ registers/ && name != "" {
      for (i = 1; i <= NF; i++) if ($i == "Used") regs = $(i + 1)
      printf "%s %d %d %d %d %s\n", arch, regs, st, ld, stack, name; name = "" }' "$1" |
    sort -u | sort -k3,3nr -k4,4nr -k6 | demangle | cut -c1-220
}

demangle() {
  if command -v c++filt >/dev/null 2>&1; then c++filt; else cat; fi
}

# HGMMA / HMMA instruction counts per kernel and architecture, over the GPU test executables (and
# the benchmark): the library's kernels (sigattn::kernel::) and any other kernel that uses an MMA.
sass_summary() {
  local out="$LOGDIR/sass_summary.txt"
  if ! command -v cuobjdump >/dev/null 2>&1; then
    echo "cuobjdump not found" >"$out"
    return 0
  fi
  local exes
  mapfile -t exes < <(gpu_tests)
  [ -x "$BUILD/bench/sigattn_bench" ] && exes+=("$BUILD/bench/sigattn_bench")
  {
    echo "# arch HGMMA HMMA kernel   (kernels of: ${exes[*]##*/})"
    for exe in "${exes[@]}"; do
      cuobjdump --dump-sass "$exe" 2>/dev/null | awk '
        function flush() { if (fn != "") printf "%s %d %d %s\n", arch, hgmma, hmma, fn }
        /code for sm_/ { flush(); fn = ""; arch = $NF; next }
        /Function :/ { flush(); fn = $NF; hgmma = 0; hmma = 0; next }
        /HGMMA/ { hgmma++ }
        /HMMA/ && !/HGMMA/ { hmma++ }
        END { flush() }'
    done | sort -u | demangle | awk '$2 > 0 || $3 > 0 || /sigattn::kernel::/' | sort -k4 -k1,1 |
      cut -c1-220
  } >"$out"
}

step_test() {
  local log="$LOGDIR/ctest.log" rc=0
  ctest --test-dir "$BUILD" --output-on-failure -j "$CTEST_JOBS" -E '^install_consumer$' \
    >"$log" 2>&1 || rc=$?
  local line
  line=$(grep -E "tests passed|No tests were found" "$log" | tail -n 1)
  note "ctest: ${line:-no result line (see ctest.log)}"
  # On the GPU machine a skipped GPU test is a failure: the suite did not run.
  if grep -q "(Skipped)" "$log"; then
    note "ctest: FAILED: tests skipped on the GPU machine: $(grep "(Skipped)" "$log" |
      awk '{print $3}' | tr '\n' ' ')"
    rc=1
  fi
  return $rc
}

step_sanitize() {
  local log="$LOGDIR/sanitizer.log" rc=0
  : >"$log"
  if ! command -v compute-sanitizer >/dev/null 2>&1; then
    note "sanitizer: FAILED: compute-sanitizer not found"
    return 1
  fi
  local exes
  mapfile -t exes < <(gpu_tests | grep -E -- "${SUITE_SANITIZE_TESTS:-.}")
  if [ ${#exes[@]} -eq 0 ]; then
    note "sanitizer: no GPU tests${SUITE_SANITIZE_TESTS:+ matching '$SUITE_SANITIZE_TESTS'}"
    return 0
  fi
  # Every (test, tool) run in the background, SANITIZER_JOBS at a time, each into its own file;
  # the log and the notes follow the fixed order (test by test, memcheck first), each run's as soon
  # as it and those before it have finished, so that a suite cut short keeps what had run.
  local tmp runs=() next=0
  tmp=$(mktemp -d)
  report_run() {
    local tool=${runs[$1]%% *} exe=${runs[$1]#* } out="$tmp/$1.out" status=1 secs=0
    read -r status secs <"$tmp/$1.rc" || status=1
    echo "===== $tool: ${exe##*/} [small]" >>"$log"
    cat "$out" >>"$log"
    local summary_line
    summary_line=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out" | sed 's/^=* *//' |
      paste -sd ';' -)
    # Catch2 exits 0 when the filter matches nothing; that would be a sanitizer run of nothing.
    if grep -q "No test cases matched" "$out"; then
      status=98
    fi
    case $status in
      0) ;;
      124) summary_line="TIMEOUT after ${SANITIZER_TIMEOUT} s; $summary_line"; rc=1 ;;
      77) summary_line="SKIPPED (no usable GPU)"; rc=1 ;;
      98) summary_line="FAILED: no test case tagged [small]"; rc=1 ;;
      99) summary_line="FAILED: sanitizer errors; $summary_line"; rc=1 ;;
      *) summary_line="FAILED: test exit $status; $summary_line"; rc=1 ;;
    esac
    note "sanitizer $tool ${exe##*/}: ${summary_line:-no summary line} (${secs} s)"
  }
  flush_runs() {  # the finished runs in order, up to the first still running
    while [ "$next" -lt "${#runs[@]}" ] && [ -f "$tmp/$next.rc" ]; do
      report_run "$next"
      next=$((next + 1))
    done
  }
  for exe in "${exes[@]}"; do
    for tool in memcheck racecheck; do
      while [ "$(jobs -rp | wc -l)" -ge "$SANITIZER_JOBS" ]; do
        wait -n || true
        flush_runs
      done
      local n=${#runs[@]}
      runs+=("$tool $exe")
      (
        start=$SECONDS
        status=0
        timeout "$SANITIZER_TIMEOUT" compute-sanitizer --tool "$tool" --error-exitcode 99 \
          --print-limit 20 --show-backtrace device "$exe" "[small]" >"$tmp/$n.out" 2>&1 ||
          status=$?
        echo "$status $((SECONDS - start))" >"$tmp/$n.rc.part" && mv "$tmp/$n.rc.part" "$tmp/$n.rc"
      ) &
    done
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
    wait -n || true
    flush_runs
  done
  wait
  flush_runs
  rm -rf "$tmp"
  return $rc
}

step_bench() {
  local exe="$BUILD/bench/sigattn_bench" rc=0
  if [ ! -x "$exe" ]; then
    note "bench: not built ($exe missing)"
    return 0
  fi
  local start=$SECONDS err
  err=$(mktemp)
  # shellcheck disable=SC2086  # SUITE_BENCH_ARGS is a list of options
  SIGATTN_GIT_COMMIT="$COMMIT" "$exe" ${SUITE_BENCH_ARGS:---quick} --json "$LOGDIR/bench.json" \
    >"$LOGDIR/bench.md" 2>"$err" || rc=$?
  # shellcheck disable=SC2016  # the backticks are markdown
  if [ -s "$err" ]; then  # progress and warnings, after the tables
    printf '\n## stderr\n```\n%s\n```\n' "$(tail -n 200 "$err")" >>"$LOGDIR/bench.md"
  fi
  rm -f "$err"
  note "bench: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - start)) s;" \
    "bench.md, bench.json"
  # The SM clock the rows ran at (NVML, per row; bench/README.md, Timing): the range says whether
  # the rows were timed under the board's power limit.
  if command -v python3 >/dev/null 2>&1 && [ -s "$LOGDIR/bench.json" ]; then
    local clocks
    clocks=$(python3 -c 'import json, sys
mhz = [r["sm_mhz"] for r in json.load(open(sys.argv[1])) if r.get("sm_mhz")]
print("SM clock %.0f-%.0f MHz over %d rows" % (min(mhz), max(mhz), len(mhz)) if mhz
      else "no SM clock readings (NVML unavailable?)")' "$LOGDIR/bench.json" 2>/dev/null) &&
      note "bench: $clocks"
  fi
  return $rc
}

# The Hopper forward tuning sweep (bench/tune), built by the build step when this step is asked
# for.
step_tune() {
  local exe="$BUILD/bench/tune/sigattn_tune_sm90" rc=0
  # (A binary left from an earlier configuration would time another commit's kernels.)
  if [ ! -x "$exe" ] || ! grep -q "^SIGATTN_BUILD_TUNING:BOOL=ON" "$BUILD/CMakeCache.txt"; then
    note "tune: not built by this configuration (run the build step together with tune)"
    return 1
  fi
  local start=$SECONDS
  # shellcheck disable=SC2086  # SUITE_TUNE_ARGS is a list of options
  SIGATTN_GIT_COMMIT="$COMMIT" "$exe" ${SUITE_TUNE_ARGS:-} >"$LOGDIR/tune.md" 2>&1 || rc=$?
  note "tune: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - start)) s;" \
    "tune.md"
  return $rc
}

# Nsight Compute on one launch of each kernel family (portable and Hopper, forward and backward;
# D=128, S=4096, dense), with the sections that say where the time goes. Not a default
# step.
step_profile() {
  local exe="$BUILD/bench/sigattn_bench" out="$LOGDIR/ncu.txt" rc=0
  if ! command -v ncu >/dev/null 2>&1 || [ ! -x "$exe" ]; then
    note "profile: ncu or the benchmark missing"
    return 1
  fi
  : >"$out"
  local runs
  read -r -a runs <<<"${SUITE_PROFILE_RUNS:-portable:fwd portable:bwd hopper:fwd hopper:bwd}"
  for run in "${runs[@]}"; do
    local path dir hdim
    IFS=: read -r path dir hdim <<<"$run"
    ncu --clock-control none -k 'regex:sm(80|90)_(fwd|bwd|bwd_dkdv)_kernel' -c 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section Occupancy \
      --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats \
      --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
      "$exe" --path "$path" --dir "$dir" --hdim "${hdim:-128}" --seqlens 4096 --ragged dense \
      --warmup 0 --warmup-ms 0 --iters 1 >>"$out" 2>&1 || rc=$?
  done
  note "profile: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)"); ncu.txt"
  return $rc
}

run_step() {
  local name=$1
  has_step "$name" || return 0
  echo "== $name" >&2
  if ! "step_$name"; then
    failed+=("$name")
    return 1
  fi
}

if run_step build || ! has_step build; then
  # The quick steps first: a round cut short by a time limit still brings back the numbers
  # (racecheck of test_backward alone takes about 95 s on an H200).
  run_step test
  run_step bench
  run_step tune
  run_step sanitize
  run_step profile
else
  note "later steps not run: the build failed; first error lines of build.log:"
  note "$(grep -E "error|Error" "$LOGDIR/build.log" | head -n 10)"
fi

if [ ${#failed[@]} -eq 0 ]; then
  note "RESULT: ok"
else
  note "RESULT: FAILED steps: ${failed[*]}"
fi
printf '%s\n' "${summary[@]}" | tee "$LOGDIR/summary.txt"
[ ${#failed[@]} -eq 0 ]
