#!/usr/bin/env bash
# The chaos suite: under steady load — writers, and thousands of Socket.IO
# clients through the nginx edge on two or more instances — one fault at a
# time, each judged by what clients saw:
#
#   acknowledged writes lost (must be 0), committed events lost / duplicated /
#   out of order at any subscriber (must be 0), client-visible errors, and the
#   time until every client had caught up.
#
#   loadtest/chaos.sh [FAULT ...]        every fault when none is named
#
# Faults (scripts/cluster.sh does each):
#   kill-instance    kill -9 instance 1, start it again 5 s later
#   stop-instance    SIGSTOP instance 1 for 30 s, then SIGCONT
#   restart-redis    kill -9 Redis, start it again 5 s later
#   restart-primary  stop the PostgreSQL primary at once (a crash), start it 5 s later
#   kill-replica     the same for the streaming replica, 10 s
#   pause-replay     pause the replica's WAL replay for 20 s
#   slow-redis       200 ms latency each way and 5 % loss on the path to Redis, 20 s
#   slow-postgres    the same on the path to the primary
#
# Settings (environment): CHAOS_CLIENTS [2000], CHAOS_RATE [100] changes/s,
# CHAOS_SECONDS [60] of writing per fault, FAULT_AFTER [15] seconds into it,
# CHAOS_GRACE [20] seconds for deliveries after the last write,
# CHAOS_INSTANCES [2], CHAOS_RESULTS [loadtest/results/chaos], LOADGEN
# [target/release/loadgen, built when not given], LOADGEN_ARGS, and every
# CLUSTER_* / EDGE_* setting of scripts/cluster.sh (its cluster lives in
# CLUSTER_DIR [target/chaos]). Writes each fault's loadgen report and
# timeline to CHAOS_RESULTS/<fault>.json/.csv, and the table of all of them
# to CHAOS_RESULTS/summary.md. Exits non-zero if any fault lost anything.
# Loopback only: loadgen refuses any other address.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ALL_FAULTS="kill-instance stop-instance restart-redis restart-primary kill-replica pause-replay slow-redis slow-postgres"
FAULTS=${*:-$ALL_FAULTS}
CLIENTS=${CHAOS_CLIENTS:-2000}
RATE=${CHAOS_RATE:-100}
DURATION=${CHAOS_SECONDS:-60}
FAULT_AFTER=${FAULT_AFTER:-15}
GRACE=${CHAOS_GRACE:-20}
RESULTS=${CHAOS_RESULTS:-loadtest/results/chaos}
export CLUSTER_DIR=${CLUSTER_DIR:-$(pwd)/target/chaos}
export CLUSTER_INSTANCES=${CHAOS_INSTANCES:-2}
export CLUSTER_FAULT_PROXIES=1
HTTPS_PORT=${CLUSTER_HTTPS_PORT:-8443}
CLUSTER="bash scripts/cluster.sh"

for fault in $FAULTS; do
  case " $ALL_FAULTS " in *" $fault "*) ;; *) echo "unknown fault $fault (one of: $ALL_FAULTS)" >&2; exit 2 ;; esac
done

# Load tests sign up many users from one address through one token: lift the
# limits that protect sign-in and the API from a single client.
export LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=${LOGIN_ATTEMPTS_PER_IP_PER_MINUTE:-1000000}
export EDGE_SIGNIN_RATE=${EDGE_SIGNIN_RATE:-100000r/m}
export EDGE_SIGNIN_BURST=${EDGE_SIGNIN_BURST:-10000}
export EDGE_API_RATE=${EDGE_API_RATE:-100000r/s}
export RUST_LOG=${RUST_LOG:-warn}

if [ -z "${LOADGEN:-}" ]; then
  say "building the load generator and the fault proxy (cargo build --release)"
  cargo build --release --locked -p taskmaster-loadgen -p taskmaster-faultproxy
  LOADGEN=target/release/loadgen
fi

cleanup() { $CLUSTER down >/dev/null 2>&1 || true; }
trap cleanup EXIT
$CLUSTER up --detach
mkdir -p "$RESULTS"

# What each fault does: inject, how long it lasts, recover.
inject() {
  case "$1" in
    kill-instance) $CLUSTER instance 1 kill ;;
    stop-instance) $CLUSTER instance 1 stop ;;
    restart-redis) $CLUSTER redis kill ;;
    restart-primary) $CLUSTER primary crash ;;
    kill-replica) $CLUSTER replica crash ;;
    pause-replay) $CLUSTER replica pause ;;
    slow-redis) $CLUSTER path redis "latency_ms=200 loss=0.05" ;;
    slow-postgres) $CLUSTER path postgres "latency_ms=200 loss=0.05" ;;
  esac
}
hold() {
  case "$1" in
    stop-instance) echo 30 ;;
    kill-instance | restart-redis | restart-primary) echo 5 ;;
    kill-replica) echo 10 ;;
    *) echo 20 ;;
  esac
}
recover() {
  case "$1" in
    kill-instance) $CLUSTER instance 1 start ;;
    stop-instance) $CLUSTER instance 1 cont ;;
    restart-redis) $CLUSTER redis start ;;
    restart-primary) $CLUSTER primary start ;;
    kill-replica) $CLUSTER replica start ;;
    pause-replay) $CLUSTER replica resume ;;
    slow-redis) $CLUSTER path redis clear ;;
    slow-postgres) $CLUSTER path postgres clear ;;
  esac
}

# Every instance answers /readyz again (between faults, so one fault's
# recovery does not spill into the next).
wait_healthy() {
  local i port deadline=$((SECONDS + 90))
  for i in $(seq 1 "$CLUSTER_INSTANCES"); do
    port=$((${CLUSTER_FIRST_PORT:-18081} + i - 1))
    until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz"; do
      [ $SECONDS -lt $deadline ] || { echo "instance $i is not ready again" >&2; return 1; }
      sleep 0.5
    done
  done
}

failed=0
for fault in $FAULTS; do
  wait_healthy
  result="$RESULTS/$fault.json"
  log="$CLUSTER_DIR/logs/loadgen-$fault.log"
  say "fault $fault: $CLIENTS clients, $RATE changes/s for $DURATION s; the fault at $FAULT_AFTER s"
  "$LOADGEN" --url "https://localhost:$HTTPS_PORT" --ca-cert "$CLUSTER_DIR/edge/tls/cert.pem" \
    --reconnect --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" --grace "$GRACE" \
    --connect-rate "${CONNECT_RATE:-500}" --json "$result" --timeline "${result%.json}.csv" \
    ${LOADGEN_ARGS:-} >"$CLUSTER_DIR/logs/loadgen-$fault.out" 2>"$log" &
  loadgen=$!
  until grep -q '^writing' "$log" 2>/dev/null; do
    kill -0 "$loadgen" 2>/dev/null || { cat "$log" >&2; echo "loadgen stopped before writing" >&2; exit 1; }
    sleep 0.5
  done
  sleep "$FAULT_AFTER"
  injected=$(date +%s.%N)
  inject "$fault"
  sleep "$(hold "$fault")"
  recover "$fault"
  recovered=$(date +%s.%N)
  status=0
  wait "$loadgen" || status=$?
  [ -f "$result" ] || { cat "$log" >&2; echo "loadgen wrote no result for $fault" >&2; exit 1; }
  python3 - "$result" "$fault" "$injected" "$recovered" <<'EOF'
import json, sys
path, fault, injected, recovered = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
report = json.load(open(path))
report["fault"] = {"name": fault, "injected_at": injected, "recovered_at": recovered,
                   "held_s": round(recovered - injected, 1)}
json.dump(report, open(path, "w"), indent=2)
EOF
  if [ "$status" -ne 0 ]; then
    echo "FAULT $fault: clients lost, repeated or reordered events, or writes were lost" >&2
    failed=1
  fi
  if [ -z "${NO_PLOT:-}" ]; then
    plot_timeline "${result%.json}.csv" --title "Chaos: $fault ($CLIENTS clients, $RATE changes/s)" \
      --span "$fault=$injected:$recovered"
  fi
done

# The table, one row per fault.
python3 - "$RESULTS" $FAULTS <<'EOF' | tee "$RESULTS/summary.md"
import json, sys, os
results, faults = sys.argv[1], sys.argv[2:]
print("| Fault | Held | Acked writes lost | Writes failed after retries | Events lost / dup / out of order | Client-visible errors (write attempts failed, sockets dropped) | Reconnected | Delivery p99 / max | Catch-up after a drop, max |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for fault in faults:
    r = json.load(open(os.path.join(results, fault + ".json")))
    d, c = r["delivery_latency"], r["catch_up"]
    print(f"| {fault} | {r['fault']['held_s']} s | {r['writes_not_durable']} | {r['writes_failed']} | "
          f"{r['lost']} / {r['duplicated']} / {r['out_of_order']} | {r['write_errors']}, {r['connections_dropped']} | "
          f"{r['reconnected']} of {r['connections_dropped']} | {d['p99_ms']:.0f} / {d['max_ms']:.0f} ms | "
          f"{c['max_ms']:.0f} ms |")
EOF
if [ "$failed" -ne 0 ]; then
  echo "FAILED: a fault lost something (see above)" >&2
  exit 1
fi
say "chaos: nothing lost under any fault ($RESULTS/summary.md)"
