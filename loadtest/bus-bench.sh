#!/usr/bin/env bash
# What the bus between instances costs Redis, for 1 to 4 instances, on one
# Redis server (classic pub/sub) and on a Redis Cluster of three masters
# (sharded pub/sub), in two workloads:
#
#   wide    980 clients on 49 projects: every project has sockets on every
#           instance, so every change goes to every instance;
#   narrow  986 clients on 493 projects, two each, on two instances: a change
#           goes only to the instances that have someone to tell.
#
#   loadtest/bus-bench.sh [SECONDS]          (default 15 per run, 16 runs, ~16 min)
#
# Env: BUS_MODES ("server cluster"), BUS_WORKLOADS ("wide narrow"),
# BUS_MAX_INSTANCES (4), BENCH_DATABASE_URL (the PostgreSQL on
# 127.0.0.1:5432; a new database per run). Redis runs privately on loopback
# ports, for the bus alone (CACHE=off, so its CPU is the bus's). Writes
# loadtest/results/bus-bench.json and prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

SECONDS_PER_RUN=${1:-15}
MODES=${BUS_MODES:-server cluster}
WORKLOADS=${BUS_WORKLOADS:-wide narrow}
MAX_INSTANCES=${BUS_MAX_INSTANCES:-4}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
RUN_DIR="$(pwd)/target/bus-bench"
RESULTS=loadtest/results/bus-bench.json
BASE_PORT=${BUS_BENCH_PORT:-18280}

command -v redis-server >/dev/null || apt_install redis-server
say "building release binaries"
cargo build --release --locked -p taskmaster-server -p taskmaster-loadgen

PIDS=()
DB=""
stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  if [ -n "$DB" ]; then psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" || true; fi
  DB=""
}
trap stop_all EXIT

# Cumulative CPU seconds (user + system) of the Redis on PORT.
redis_cpu() {
  redis-cli -p "$1" info cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(sys|user):/ { total += $2 } END { printf "%.3f", total }'
}

# The bus counters summed over every instance's /metrics, as JSON:
# {"published/events": n, "received/presence": n, …}.
bus_counters() { # URL…
  for url in "$@"; do curl -fs "$url/metrics"; done | python3 -c '
import json, re, sys
totals = {}
for line in sys.stdin:
    match = re.match(r"bus_messages_(published|received)_total\{kind=\"(\w+)\"\} (\S+)", line)
    if match:
        key = match[1] + "/" + match[2]
        totals[key] = totals.get(key, 0) + float(match[3])
print(json.dumps(totals))'
}

start_redis_server() { # PORT
  redis-server --bind 127.0.0.1 --port "$1" --save '' --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis-$1.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis on $1 did not start" >&2
  exit 1
}

start_redis_cluster() { # PORT PORT PORT
  local addresses=()
  for port in "$@"; do
    rm -f "$RUN_DIR/nodes-$port.conf"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
      --dir "$RUN_DIR" --logfile "$RUN_DIR/redis-$port.log" &
    PIDS+=($!)
    addresses+=("127.0.0.1:$port")
  done
  for port in "$@"; do
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  for port in "$@"; do
    until redis-cli -p "$port" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
  done
}

mkdir -p "$RUN_DIR" loadtest/results
ROWS=()
for mode in $MODES; do
  for workload in $WORKLOADS; do
    case $workload in
      wide) clients=980 projects=49 ;;
      narrow) clients=986 projects=493 ;;
      *) echo "unknown workload $workload" >&2; exit 2 ;;
    esac
    for instances in $(seq 1 "$MAX_INSTANCES"); do
      DB="tm_bus_$(date +%s)"
      psql "$ADMIN_URL" -qc "create database $DB"
      redis_ports=()
      bus_env=()
      if [ "$mode" = server ]; then
        redis_ports=("$BASE_PORT")
        start_redis_server "$BASE_PORT"
        bus_env=(REDIS_URL="redis://127.0.0.1:$BASE_PORT")
      else
        redis_ports=("$BASE_PORT" $((BASE_PORT + 1)) $((BASE_PORT + 2)))
        start_redis_cluster "${redis_ports[@]}"
        bus_env=(REDIS_CLUSTER_URLS="redis://127.0.0.1:$BASE_PORT,redis://127.0.0.1:$((BASE_PORT + 1))")
      fi
      urls=()
      server_pids=()
      for i in $(seq 1 "$instances"); do
        port=$((BASE_PORT + 10 + i))
        env DATABASE_URL="${ADMIN_URL%/*}/$DB" BIND="127.0.0.1:$port" RUST_LOG=warn CACHE=off \
          LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=1000000 DATABASE_MAX_CONNECTIONS=20 \
          "${bus_env[@]}" ./target/release/taskmaster >"$RUN_DIR/server-$port.log" 2>&1 &
        PIDS+=($!)
        server_pids+=($!)
        urls+=("http://127.0.0.1:$port")
      done
      for url in "${urls[@]}"; do
        for _ in $(seq 1 150); do curl -fs "$url/readyz" >/dev/null && break; sleep 0.2; done
      done
      say "$mode, $workload, $instances instance(s): $clients clients on $projects projects"
      cpu_before=0
      result="$RUN_DIR/$mode-$workload-$instances.json"
      IFS=,
      ./target/release/loadgen --url "${urls[*]}" --server-pid "${server_pids[*]}" \
        --clients "$clients" --projects "$projects" --users 50 --writers 20 --rate 200 \
        --duration "$SECONDS_PER_RUN" --linger 3 --json "$result" >"$RUN_DIR/loadgen.log" 2>&1 &
      unset IFS
      loadgen=$!
      # Count from the steady phase on, leaving out loadgen's setup (sign-ups,
      # projects, connecting and joining): it starts when loadgen says so.
      until grep -q "writing" "$RUN_DIR/loadgen.log" 2>/dev/null || ! kill -0 "$loadgen" 2>/dev/null; do
        sleep 0.05
      done
      before=$(bus_counters "${urls[@]}")
      for port in "${redis_ports[@]}"; do cpu_before=$(python3 -c "print($cpu_before + $(redis_cpu "$port"))"); done
      per_node_before=()
      for port in "${redis_ports[@]}"; do per_node_before+=("$(redis_cpu "$port")"); done
      # Count up to the end of loadgen's measuring window, before its
      # clients disconnect (each disconnect is a presence update).
      until grep -q "disconnecting" "$RUN_DIR/loadgen.log" 2>/dev/null || ! kill -0 "$loadgen" 2>/dev/null; do
        sleep 0.05
      done
      after=$(bus_counters "${urls[@]}")
      cpu_after=0
      per_node=()
      for index in "${!redis_ports[@]}"; do
        now=$(redis_cpu "${redis_ports[$index]}")
        cpu_after=$(python3 -c "print($cpu_after + $now)")
        per_node+=("$(python3 -c "print(round($now - ${per_node_before[$index]}, 3))")")
      done
      wait "$loadgen"
      row=$(python3 - "$result" "$mode" "$workload" "$instances" "$cpu_before" "$cpu_after" \
        "$before" "$after" "${per_node[*]}" <<'PY'
import json, sys
result, mode, workload, instances = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cpu = float(sys.argv[6]) - float(sys.argv[5])
before, after = json.loads(sys.argv[7]), json.loads(sys.argv[8])
delta = {key: after[key] - before.get(key, 0) for key in after}
per_node = [float(x) for x in sys.argv[9].split()]
run = json.load(open(result))
# Each committed change is published once, by the instance that made it.
changes = max(delta.get("published/events", 0), 1)
def per_change(*keys):
    return round(sum(delta.get(key, 0) for key in keys) / changes, 3)
print(json.dumps({
    "mode": mode, "workload": workload, "instances": instances,
    "clients": run["connected"], "projects": run["projects"],
    "writes_acknowledged": run["writes_ok"],
    "changes": int(changes),
    "bus_messages": delta,
    "event_messages_received_per_change": per_change("received/events"),
    "presence_messages_per_change": per_change(
        "published/presence", "published/presence_wanted",
        "received/presence", "received/presence_wanted"),
    "all_messages_per_change": per_change(*delta.keys()),
    "redis_cpu_seconds": round(cpu, 3),
    "redis_cpu_us_per_change": round(cpu * 1e6 / changes, 1),
    "redis_cpu_seconds_per_node": per_node,
    "message_p95_ms": run["delivery_latency"]["p95_ms"],
    "lost": run["lost"], "duplicated": run["duplicated"], "out_of_order": run["out_of_order"],
}))
PY
)
      echo "$row"
      ROWS+=("$row")
      stop_all
    done
  done
done

python3 - "$RESULTS" "${ROWS[@]}" <<'PY'
import json, sys
rows = [json.loads(row) for row in sys.argv[2:]]
json.dump(rows, open(sys.argv[1], "w"), indent=2)
print("| bus | workload | instances | changes | event messages received per change | presence messages per change | all messages per change | Redis CPU µs per change | Redis CPU s per node | message p95 ms | lost/dup/ooo |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    nodes = " / ".join(f"{x:.2f}" for x in r["redis_cpu_seconds_per_node"])
    print(f"| {r['mode']} | {r['workload']} | {r['instances']} | {r['changes']} | "
          f"{r['event_messages_received_per_change']} | "
          f"{r['presence_messages_per_change']} | {r['all_messages_per_change']} | "
          f"{r['redis_cpu_us_per_change']} | {nodes} | {r['message_p95_ms']} | "
          f"{r['lost']}/{r['duplicated']}/{r['out_of_order']} |")
PY
say "results in $RESULTS"
