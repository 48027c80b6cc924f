#!/usr/bin/env bash
# What monitoring itself costs: the same load (Socket.IO clients, writers,
# then REST reads) against one instance in four set-ups, alternated ROUNDS
# times so that drift on the machine spreads over all of them:
#
#   metrics-off   METRICS=off: nothing recorded (the floor)
#   metrics-on    the default: Prometheus metrics, no trace export
#   traces-5      metrics, and traces exported over OTLP at the default ratio (5 %)
#   traces-100    metrics, and every trace exported
#
#   loadtest/monitoring-cost.sh [CLIENTS [ROUNDS]]      defaults 2000 2
#
# Each round: the clients connected and the writers writing (CPU per
# delivery), then 100,000 REST reads with 20 quiet clients (CPU per read;
# measured apart because 2,000 connected sockets' own upkeep blurs it).
#
# Traces go to a local OTLP/HTTP sink (a few lines of Python that accept and
# count what they are sent). Reports the server's CPU per delivery, per REST
# read and in all, each against metrics-off and metrics-on, into
# loadtest/results/monitoring-cost.json. Uses BENCH_DATABASE_URL (default:
# the PostgreSQL on 127.0.0.1:5432, a new database per run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CLIENTS=${1:-2000}
ROUNDS=${2:-2}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
RESULTS=loadtest/results/monitoring-cost
VARIANTS="metrics-off metrics-on traces-5 traces-100"
PORT=18180
SINK_PORT=18181

if [ -z "${NO_BUILD:-}" ]; then
  say "building release binaries"
  cargo build --release --locked -p taskmaster-server -p taskmaster-loadgen
fi
mkdir -p "$RESULTS"

# The OTLP sink: answers every export with 200 and counts bytes and batches.
python3 - "$SINK_PORT" "$RESULTS/sink.json" <<'EOF' &
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, out = int(sys.argv[1]), sys.argv[2]
seen = {"batches": 0, "bytes": 0}
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        seen["batches"] += 1
        seen["bytes"] += length
        json.dump(seen, open(out, "w"))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
EOF
SINK=$!
SERVER=""
DB=""
cleanup() {
  [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null || true
  kill "$SINK" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$DB" ] && psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

settings_of() {
  case "$1" in
    metrics-off) echo "METRICS=off" ;;
    metrics-on) echo "METRICS=on" ;;
    traces-5) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_TRACES_SAMPLER_ARG=0.05" ;;
    traces-100) echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_TRACES_SAMPLER_ARG=1" ;;
  esac
}

for round in $(seq 1 "$ROUNDS"); do
  for variant in $VARIANTS; do
    DB="tm_monitoring_$(date +%s)"
    psql "$ADMIN_URL" -qc "create database $DB"
    # shellcheck disable=SC2046
    env $(settings_of "$variant") DATABASE_URL="${ADMIN_URL%/*}/$DB" BIND="127.0.0.1:$PORT" \
      RUST_LOG=warn LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000000 DATABASE_MAX_CONNECTIONS=20 \
      API_REQUESTS_PER_TOKEN_PER_SECOND=0 API_REQUESTS_PER_USER_PER_SECOND=0 \
      ./target/release/taskmaster >"target/monitoring-$variant.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
    say "round $round, $variant: $CLIENTS clients, 200 changes/s for 30 s, then 20,000 reads"
    ./target/release/loadgen --url "http://127.0.0.1:$PORT" --server-pid "$SERVER" \
      --clients "$CLIENTS" --projects 50 --users 50 --writers 20 --rate 200 --duration 30 \
      --reads 20000 --json "$RESULTS/$variant-$round.json" >/dev/null
    # REST reads again, on their own: 100,000 of them with 20 quiet clients,
    # so the CPU they take is not mixed with 2,000 sockets' housekeeping.
    ./target/release/loadgen --url "http://127.0.0.1:$PORT" --server-pid "$SERVER" \
      --clients 20 --projects 5 --users 5 --writers 1 --rate 5 --duration 5 \
      --reads 100000 --json "$RESULTS/$variant-reads-$round.json" >/dev/null
    kill -TERM "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null
    DB=""
  done
done

python3 - "$RESULTS" "$ROUNDS" $VARIANTS <<'EOF' | tee loadtest/results/monitoring-cost.md
import json, os, statistics, sys
results, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for variant in variants:
    runs = [json.load(open(os.path.join(results, f"{variant}-{r}.json"))) for r in range(1, rounds + 1)]
    reads = [json.load(open(os.path.join(results, f"{variant}-reads-{r}.json"))) for r in range(1, rounds + 1)]
    pick = lambda key: statistics.median(run[key] for run in runs)
    rows[variant] = {
        "cpu_us_per_delivery": pick("server_cpu_us_per_delivery"),
        "cpu_us_per_read": statistics.median(run["server_cpu_us_per_read"] for run in reads),
        "cpu_us_per_read_under_sockets": pick("server_cpu_us_per_read"),
        "cpu_seconds": pick("server_cpu_seconds"),
        "lost": sum(run["lost"] for run in runs),
        "runs": [{k: run[k] for k in ("server_cpu_us_per_delivery", "server_cpu_us_per_read", "server_cpu_seconds")} for run in runs],
        "read_runs": [run["server_cpu_us_per_read"] for run in reads],
    }
json.dump(rows, open(os.path.join(os.path.dirname(results), "monitoring-cost.json"), "w"), indent=2)
floor, default = rows["metrics-off"], rows["metrics-on"]
pct = lambda value, base: f"{(value / base - 1) * 100:+.1f} %"
print(f"| Set-up | CPU per delivery | per REST read (alone) | CPU during the writes | vs metrics off (delivery / read) | vs the default (delivery / read) |")
print("| --- | --- | --- | --- | --- | --- |")
for variant, row in rows.items():
    print(f"| {variant} | {row['cpu_us_per_delivery']:.2f} µs | {row['cpu_us_per_read']:.1f} µs | {row['cpu_seconds']:.1f} s | "
          f"{pct(row['cpu_us_per_delivery'], floor['cpu_us_per_delivery'])} / {pct(row['cpu_us_per_read'], floor['cpu_us_per_read'])} | "
          f"{pct(row['cpu_us_per_delivery'], default['cpu_us_per_delivery'])} / {pct(row['cpu_us_per_read'], default['cpu_us_per_read'])} |")
EOF
say "written to loadtest/results/monitoring-cost.json and .md"
