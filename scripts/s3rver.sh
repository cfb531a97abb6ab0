#!/usr/bin/env bash
# Starts and stops s3rver (an S3-API server in Node, tests/s3) on 127.0.0.1 for blob/s3's tests.
#
#   scripts/s3rver.sh start [STATE_DIR [WATCH_PID]]   prints the endpoint (http://127.0.0.1:PORT)
#   scripts/s3rver.sh stop  [STATE_DIR]
#
# STATE_DIR (default ${TMPDIR:-/tmp}/parley-s3rver) holds the server's pid, endpoint, log and
# data. `start` is idempotent: with a server already running there it prints its endpoint. With
# WATCH_PID the server exits by itself once that process is gone (a test binary passes its own
# pid). s3rver is installed into tests/s3/node_modules from the committed package-lock.json
# (`npm ci`, only when missing). Credentials: S3RVER / S3RVER. It checks the access key id but
# not SigV4 signatures, and wants x-amz-content-sha256 on every request.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command="${1:-}"
state="${2:-${TMPDIR:-/tmp}/parley-s3rver}"
watch_pid="${3:-}"

running() { [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

case "$command" in
  start)
    if running && [[ -s "$state/endpoint" ]]; then
      cat "$state/endpoint"
      exit 0
    fi
    command -v node >/dev/null || { echo "s3rver.sh: node (>= 20) is required" >&2; exit 1; }
    if [[ ! -d "$root/tests/s3/node_modules/s3rver" ]]; then
      # One installer at a time (two test binaries may start together).
      (flock 9
       [[ -d "$root/tests/s3/node_modules/s3rver" ]] ||
         (cd "$root/tests/s3" && npm ci --no-audit --no-fund --loglevel=error >&2)
      ) 9>"${TMPDIR:-/tmp}/parley-s3rver-npm.lock"
    fi
    mkdir -p "$state/data"
    rm -f "$state/endpoint"
    # Detached from our stdout: whoever reads this script's output must not wait for the server.
    node "$root/tests/s3/run-s3rver.mjs" "$state/data" "$state/endpoint" $watch_pid \
      </dev/null >"$state/log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 200); do  # up to 20 s
      if [[ -s "$state/endpoint" ]]; then
        endpoint="$(cat "$state/endpoint")"
        # Answers HTTP (any status): ready.
        if curl -s -o /dev/null --max-time 2 "$endpoint/"; then
          echo "$endpoint"
          exit 0
        fi
      fi
      running || break
      sleep 0.1
    done
    echo "s3rver.sh: s3rver did not start; its log ($state/log):" >&2
    cat "$state/log" >&2 || true
    exit 1
    ;;
  stop)
    if running; then
      pid="$(cat "$state/pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$state/pid" "$state/endpoint"
    ;;
  *)
    echo "usage: $0 start [STATE_DIR [WATCH_PID]] | stop [STATE_DIR]" >&2
    exit 2
    ;;
esac
