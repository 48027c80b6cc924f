#!/usr/bin/env bash
# One instance against the floor: the same real-time load (N clients over 50
# projects, 20 writers at 200 changes/s for 30 s) first against
# fanout-baseline — loadgen's surface in memory, fanned out by socketioxide's
# own room broadcast — then against the server on a fresh database, ROUNDS
# times, alternating. Reports server CPU per delivery for both and their
# ratio, and the server's memory per connected socket (idle and under load).
#
#   loadtest/fanout-bench.sh [CLIENTS=19000] [ROUNDS=2] [extra loadgen flags…]
#
# Uses BENCH_DATABASE_URL (default: the PostgreSQL on 127.0.0.1:5432, a new
# database per round). Writes loadtest/results/fanout-<clients>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CLIENTS=${1:-19000}
ROUNDS=${2:-2}
shift $(( $# >= 2 ? 2 : $# ))
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
RESULT="loadtest/results/fanout-${CLIENTS}.json"
WORK=$(mktemp -d)
PORT=18190

say "building release binaries"
cargo build --release --locked -p taskmaster-server -p taskmaster-loadgen -p taskmaster-fanout-baseline

PID=""
DB=""
stop() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  PID=""
  if [ -n "$DB" ]; then psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" || true; fi
  DB=""
}
trap 'stop; rm -rf "$WORK"' EXIT

wait_ready() {
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0; sleep 0.2; done
  echo "the process on port $PORT never became ready" >&2
  exit 1
}

measure() { # NAME [loadgen flags…]: loadgen against whatever listens on $PORT (pid $PID)
  local name=$1
  shift
  ./target/release/loadgen --url "http://127.0.0.1:$PORT" --server-pid "$PID" \
    --clients "$CLIENTS" --projects 50 --users 50 --writers 20 --rate 200 --duration 30 \
    --json "$WORK/$name.json" "$@" >/dev/null
}

for round in $(seq 1 "$ROUNDS"); do
  say "round $round/$ROUNDS: fanout-baseline, $CLIENTS clients"
  BIND="127.0.0.1:$PORT" ./target/release/fanout-baseline >"$WORK/baseline.log" 2>&1 &
  PID=$!
  wait_ready
  measure "baseline-$round" "$@"
  stop

  say "round $round/$ROUNDS: the server, $CLIENTS clients"
  DB="tm_fanout_$(date +%s)"
  psql "$ADMIN_URL" -qc "create database $DB"
  env DATABASE_URL="${ADMIN_URL%/*}/$DB" BIND="127.0.0.1:$PORT" RUST_LOG=warn \
      LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000000 DATABASE_MAX_CONNECTIONS=20 \
      ./target/release/taskmaster >"$WORK/server.log" 2>&1 &
  PID=$!
  wait_ready
  measure "server-$round" "$@"
  stop
done

python3 - "$WORK" "$ROUNDS" "$RESULT" <<'EOF'
import json, sys
work, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = []
for n in range(1, rounds + 1):
    baseline = json.load(open(f"{work}/baseline-{n}.json"))
    server = json.load(open(f"{work}/server-{n}.json"))
    runs.append({
        "round": n,
        "baseline": baseline,
        "server": server,
        "cpu_ratio": server["server_cpu_us_per_delivery"] / baseline["server_cpu_us_per_delivery"],
    })
print(f"{'round':>5} {'baseline µs':>12} {'server µs':>10} {'ratio':>6} "
      f"{'KiB/socket idle':>16} {'KiB/socket load':>16} {'peak MiB':>9} {'lost':>5}")
for run in runs:
    b, s = run["baseline"], run["server"]
    print(f"{run['round']:>5} {b['server_cpu_us_per_delivery']:>12.2f} "
          f"{s['server_cpu_us_per_delivery']:>10.2f} {run['cpu_ratio']:>6.2f} "
          f"{s['server_kib_per_client']:>7.1f} ({b['server_kib_per_client']:>5.1f}) "
          f"{s['server_peak_kib_per_client']:>7.1f} ({b['server_peak_kib_per_client']:>5.1f}) "
          f"{s['server_peak_rss_mib']:>9.0f} {s['lost'] + b['lost']:>5}")
print("(in brackets: the baseline's)")
json.dump({"clients": runs[0]["server"]["clients"], "runs": runs}, open(out, "w"), indent=2)
if any(r["server"]["lost"] or r["baseline"]["lost"] for r in runs):
    sys.exit(2)
EOF
say "result written to $RESULT"
