#!/usr/bin/env bash
# The standard benchmark set (make bench): provisions users into a fresh data dir, starts a
# release parleyd on it, runs every parley-bench scenario, and prints the reports. JSON
# reports land in build/bench/. A few minutes on a 2-core machine. Figures go to
# docs/benchmarks.md with the machine and the command.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PARLEYD=${PARLEYD:-$BUILD/parleyd}  # another server binary to measure (before/after pairs)
DURABILITY=${DURABILITY:-sync}
OUT=$BUILD/bench
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
DIRECT_PAIRS=${DIRECT_PAIRS:-100}
DIRECT_RATE=${DIRECT_RATE:-20000}
GROUP_COUNT=${GROUP_COUNT:-4}
GROUP_RATE=${GROUP_RATE:-200}
# One 256-member group at half the 1 000 000 deliveries/s goal (2 000 msgs/s x 255 recipients).
BIG_GROUP_RATE=${BIG_GROUP_RATE:-2000}
RECONNECT_DEVICES=${RECONNECT_DEVICES:-1000}
RECONNECT_BACKLOG=${RECONNECT_BACKLOG:-100}
DURATION=${DURATION:-10}

work=$(mktemp -d /tmp/parley-bench.XXXXXX)
mkdir -p "$OUT"
cleanup() {
  [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

users=$(( IDLE_CONNECTIONS > GROUP_COUNT * 256 ? IDLE_CONNECTIONS : GROUP_COUNT * 256 ))
users=$(( users + RECONNECT_DEVICES + 1 ))
echo "bench: provisioning $users users" >&2
"$BUILD/parley-admin" provision --data-dir "$work/data" --users "$users" > "$work/tokens.tsv"

"$PARLEYD" --listen 127.0.0.1:0 --data-dir "$work/data" --port-file "$work/port" \
  --durability "$DURABILITY" --log-level warn \
  --rate-per-sec 0 --max-unauth-per-ip 0 --max-connections-per-user 0 2> "$work/parleyd.log" &
pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port=$(cat "$work/port")
echo "bench: parleyd pid $pid on port $port, durability $DURABILITY, $(nproc) cores" >&2

run() {
  local name=$1 tokens=$2; shift 2
  echo "== $name: parley-bench $*" >&2
  "$BUILD/parley-bench" "$@" --server "127.0.0.1:$port" --server-pid "$pid" \
    --tokens "$tokens" --threads 2 --json-out "$OUT/$name.json"
}

# Each scenario takes its accounts from the start of its tokens file; reconnect takes the last
# accounts, which no chat scenario touched, so its backlog is exactly the one it sends.
tail -n $(( RECONNECT_DEVICES + 1 )) "$work/tokens.tsv" > "$work/reconnect.tsv"
run idle "$work/tokens.tsv" idle --connections "$IDLE_CONNECTIONS" --duration 5
run direct "$work/tokens.tsv" direct --pairs "$DIRECT_PAIRS" --rate "$DIRECT_RATE" --duration "$DURATION" --warmup 2
run direct-half "$work/tokens.tsv" direct --pairs "$DIRECT_PAIRS" --rate $(( DIRECT_RATE / 2 )) --duration "$DURATION" --warmup 2
run group "$work/tokens.tsv" group --groups "$GROUP_COUNT" --members 256 --rate "$GROUP_RATE" --duration "$DURATION" --warmup 2
run group-half "$work/tokens.tsv" group --groups 1 --members 256 --rate "$BIG_GROUP_RATE" --duration "$DURATION" --warmup 2
run reconnect "$work/reconnect.tsv" reconnect --devices "$RECONNECT_DEVICES" --backlog "$RECONNECT_BACKLOG"
