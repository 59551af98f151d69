#!/bin/bash
# Builds the fuzz target (preset fuzz: clang-14, libFuzzer, ASan + UBSan, in build-fuzz/) and
# fuzzes it for SECONDS (default 600) from a copy of the seed corpus. See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS]
#
# Environment: FUZZ_JOBS (default 2) parallel fuzzer processes (-jobs/-workers), each fuzzing
# for the whole time; 1 fuzzes in the foreground. FUZZ_ARGS: more libFuzzer flags.
#
# The working corpus, build-fuzz/corpus/, keeps what the fuzzer adds from one run to the next
# (it is not committed). A finding is written to fuzz/crashers/ (crash-*, leak-*, timeout-*,
# oom-*) and ends that process; the script then exits non-zero. The per-process logs are in
# build-fuzz/fuzz-logs/.
set -euo pipefail

seconds=${1:-600}
jobs=${FUZZ_JOBS:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Debian's clang 14 and its sanitizer runtimes (libFuzzer, ASan, UBSan), where missing.
missing=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bash .ci/ninja-dir build-fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2

work=$root/build-fuzz/corpus
logs=$root/build-fuzz/fuzz-logs
crashers=$root/fuzz/crashers
mkdir -p "$work" "$logs" "$crashers"
cp -n "$root"/fuzz/corpus/* "$work"/
before=$(ls "$crashers" | wc -l)

# -rss_limit_mb: a process over 2 GiB is a finding (inputs declaring giant tensors must be
# refused, not allocated; the target's --max-memory is 64 MiB). -timeout: one input over 20 s
# is a finding. The crashers are read as a second corpus: one that crashes again is found at
# once.
flags=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -dict="$root/fuzz/onnx.dict"
       -artifact_prefix="$crashers/" -print_final_stats=1 -use_value_profile=1)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
if [ "$jobs" -le 1 ]; then
  "$root"/build-fuzz/fuzz/model_fuzzer "${flags[@]}" ${FUZZ_ARGS:-} "$work" "$crashers" \
    2>&1 | tee "$logs/fuzz-0.log" || status=$?
else
  # libFuzzer writes fuzz-<n>.log in the current folder.
  (cd "$logs" && rm -f fuzz-*.log &&
   "$root"/build-fuzz/fuzz/model_fuzzer "${flags[@]}" -jobs="$jobs" -workers="$jobs" \
     ${FUZZ_ARGS:-} "$work" "$crashers") || status=$?
  for log in "$logs"/fuzz-*.log; do
    echo "== $log"
    grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|ERROR|SUMMARY|Test unit written" "$log" | tail -n 12
  done
fi

after=$(ls "$crashers" | wc -l)
if [ "$status" -ne 0 ] || [ "$after" -ne "$before" ]; then
  echo "fuzz/run.sh: finding(s) in $crashers (exit status $status); see fuzz/README.md" >&2
  exit 1
fi
echo "fuzz/run.sh: $seconds s, no finding; working corpus: $(ls "$work" | wc -l) inputs in $work"
