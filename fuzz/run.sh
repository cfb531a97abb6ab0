#!/usr/bin/env bash
# Runs one libFuzzer target built in build-fuzz/ (make fuzz-build) for a while:
#
#   fuzz/run.sh request|http SECONDS
#
# The working corpus is build-fuzz/corpus/TARGET (new inputs land there), seeded from the
# checked-in fuzz/corpus/TARGET, which libFuzzer only reads. A crash, leak, timeout or
# sanitizer report makes libFuzzer exit non-zero, and so this script: the reproducer is written
# to build-fuzz/artifacts/TARGET/ (reproduce with `build-fuzz/fuzz/fuzz_TARGET FILE`). The full
# log is build-fuzz/logs/TARGET.log; the last lines (executions, coverage) are printed.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: fuzz/run.sh request|http SECONDS}
seconds=${2:-60}
bin=build-fuzz/fuzz/fuzz_$target
[[ -x $bin ]] || { echo "fuzz: $bin is missing: run make fuzz-build" >&2; exit 2; }
case $target in
  request) max_len=20000 ;;  # past the 16 KiB text limit, below the 64 KiB frame limit
  http) max_len=8192 ;;
  ws) max_len=16384 ;;  # several frames past the 4 KiB message limit of the target
  *) echo "fuzz: unknown target $target" >&2; exit 2 ;;
esac

corpus=build-fuzz/corpus/$target
artifacts=build-fuzz/artifacts/$target
log=build-fuzz/logs/$target.log
mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"

echo "fuzz: running fuzz_$target for ${seconds}s (log: $log)"
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$bin" "$corpus" "fuzz/corpus/$target" \
    -dict="fuzz/$target.dict" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    >"$log" 2>&1 || status=$?

grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::' "$log" | tail -7 || true
if [[ $status -ne 0 ]]; then
  echo "fuzz: fuzz_$target FAILED (exit status $status); the report:" >&2
  grep -n -m1 -E 'ERROR: |runtime error|property violated|deadly signal' "$log" >&2 || true
  tail -40 "$log" >&2
  echo "fuzz: reproducers written by this run (replay: $bin FILE):" >&2
  find "$artifacts" -type f -newer "$stamp" >&2 || true
  exit 1
fi
echo "fuzz: fuzz_$target: no crash in ${seconds}s"
