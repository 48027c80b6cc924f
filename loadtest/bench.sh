#!/usr/bin/env bash
# Real-time benchmark: N Socket.IO clients over 50 projects at 200 changes/s,
# against one instance or several behind Redis, all on this machine.
#
#   loadtest/bench.sh CLIENTS [INSTANCES] [extra loadgen flags…]
#   loadtest/bench.sh 19000 1
#   loadtest/bench.sh 10000 2 --duration 60
#
# Uses BENCH_DATABASE_URL (default: the PostgreSQL on 127.0.0.1:5432, a new
# database per run) and BENCH_REDIS_URL (default redis://127.0.0.1:6379) for
# several instances. Writes loadtest/results/<clients>c-<instances>i.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CLIENTS=${1:?usage: loadtest/bench.sh CLIENTS [INSTANCES] [loadgen flags…]}
INSTANCES=${2:-1}
shift $(( $# >= 2 ? 2 : 1 ))
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
DB="tm_bench_$(date +%s)"
DB_URL="${ADMIN_URL%/*}/$DB"
RESULT="loadtest/results/${CLIENTS}c-${INSTANCES}i.json"

say "building release binaries"
cargo build --release --locked -p taskmaster-server -p taskmaster-loadgen

say "creating database $DB"
psql "$ADMIN_URL" -qc "create database $DB"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" || true
}
trap cleanup EXIT

URLS=()
for i in $(seq 1 "$INSTANCES"); do
  port=$((18080 + i))
  env_redis=()
  if [ "$INSTANCES" -gt 1 ]; then env_redis=(REDIS_URL="$REDIS" REDIS_PREFIX="$DB"); fi
  env DATABASE_URL="$DB_URL" BIND="127.0.0.1:$port" RUST_LOG=warn \
      LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000000 DATABASE_MAX_CONNECTIONS=20 \
      "${env_redis[@]}" ./target/release/taskmaster >"target/bench-$port.log" 2>&1 &
  PIDS+=($!)
  URLS+=("http://127.0.0.1:$port")
done
for url in "${URLS[@]}"; do
  for _ in $(seq 1 100); do curl -fs "$url/readyz" >/dev/null && break; sleep 0.2; done
done
say "instances up: ${URLS[*]}"

IFS=,
say "running loadgen: $CLIENTS clients, $INSTANCES instance(s)"
./target/release/loadgen --url "${URLS[*]}" --server-pid "${PIDS[*]}" \
  --clients "$CLIENTS" --projects 50 --users 50 --writers 20 --rate 200 --duration 30 \
  --json "$RESULT" "$@"
unset IFS
say "result written to $RESULT"
