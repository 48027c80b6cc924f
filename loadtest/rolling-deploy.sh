#!/usr/bin/env bash
# A rolling deploy under load, judged by what clients saw: brings up the
# local cluster (scripts/cluster.sh), runs loadgen through the edge (wss and
# https, reconnecting and catching up with `since` as the web app does),
# replaces every instance one at a time in the middle of the run, and checks
# that no client lost, repeated or reordered an event, that every write was
# acknowledged after its client's retries and is in the change log.
#
#   loadtest/rolling-deploy.sh [CLIENTS [RATE [SECONDS]]]     defaults 3000 200 60
#
# Settings (environment): LOADGEN [target/release/loadgen, built when not
# given], LOADGEN_ARGS (more loadgen flags, e.g. "--projects 20 --users 10"),
# DEPLOY_AFTER [15] seconds of writing before the deploy starts,
# ROLLING_RESULT [loadtest/results/rolling-deploy.json], and every
# CLUSTER_* / EDGE_* setting of scripts/cluster.sh (its cluster lives in
# CLUSTER_DIR [target/rolling]). The timeline (one row per second) is written
# beside the result as .csv and drawn as .png by loadtest/plot.py (NO_PLOT=1
# skips the plot).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CLIENTS=${1:-3000}
RATE=${2:-200}
DURATION=${3:-60}
DEPLOY_AFTER=${DEPLOY_AFTER:-15}
RESULT=${ROLLING_RESULT:-loadtest/results/rolling-deploy.json}
TIMELINE=${RESULT%.json}.csv
export CLUSTER_DIR=${CLUSTER_DIR:-$(pwd)/target/rolling}
HTTPS_PORT=${CLUSTER_HTTPS_PORT:-8443}

# Load tests sign up many users from one address through one token: lift the
# limits that protect sign-in and the API from a single client.
export LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=${LOGIN_ATTEMPTS_PER_IP_PER_MINUTE:-1000000}
export EDGE_SIGNIN_RATE=${EDGE_SIGNIN_RATE:-100000r/m}
export EDGE_SIGNIN_BURST=${EDGE_SIGNIN_BURST:-10000}
export EDGE_API_RATE=${EDGE_API_RATE:-100000r/s}
export RUST_LOG=${RUST_LOG:-warn}

if [ -z "${LOADGEN:-}" ]; then
  say "building the load generator (cargo build --release)"
  cargo build --release --locked -p taskmaster-loadgen
  LOADGEN=target/release/loadgen
fi

cleanup() { bash scripts/cluster.sh down >/dev/null 2>&1 || true; }
trap cleanup EXIT
bash scripts/cluster.sh up --detach

mkdir -p "$(dirname "$RESULT")"
LOG="$CLUSTER_DIR/logs/loadgen.log"
say "loadgen: $CLIENTS clients, $RATE changes/s for $DURATION s through https://localhost:$HTTPS_PORT"
"$LOADGEN" --url "https://localhost:$HTTPS_PORT" --ca-cert "$CLUSTER_DIR/edge/tls/cert.pem" \
  --reconnect --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" --grace 10 \
  --connect-rate "${CONNECT_RATE:-500}" --json "$RESULT" --timeline "$TIMELINE" ${LOADGEN_ARGS:-} \
  >"$CLUSTER_DIR/logs/loadgen.out" 2>"$LOG" &
LOADGEN_PID=$!

# The deploy starts DEPLOY_AFTER seconds into the writing.
until grep -q '^writing' "$LOG" 2>/dev/null; do
  kill -0 "$LOADGEN_PID" 2>/dev/null || { cat "$LOG" >&2; echo "loadgen stopped before writing" >&2; exit 1; }
  sleep 0.5
done
sleep "$DEPLOY_AFTER"
DEPLOY_STARTED=$SECONDS
DEPLOY_FROM=$(date +%s.%N)
CLUSTER_NO_BUILD=1 bash scripts/cluster.sh deploy
DEPLOY_UNTIL=$(date +%s.%N)
DEPLOY_SECONDS=$((SECONDS - DEPLOY_STARTED))

status=0
wait "$LOADGEN_PID" || status=$?
cat "$LOG" >&2
[ -f "$RESULT" ] || { echo "loadgen wrote no result" >&2; exit 1; }
python3 - "$RESULT" "$DEPLOY_SECONDS" <<'EOF'
import json, sys
path, deploy_seconds = sys.argv[1], int(sys.argv[2])
report = json.load(open(path))
report["rolling_deploy_seconds"] = deploy_seconds
json.dump(report, open(path, "w"), indent=2)
keys = ["connected", "connections_dropped", "reconnected", "reconnect_gave_up",
        "expected_deliveries", "lost", "duplicated", "out_of_order",
        "writes_ok", "write_errors", "writes_failed", "writes_not_durable"]
for key in keys:
    print(f"{key:>22}: {report[key]}")
print(f"{'catch-up p95 / max':>22}: {report['catch_up']['p95_ms']} / {report['catch_up']['max_ms']} ms")
print(f"{'delivery p95 / p99':>22}: {report['delivery_latency']['p95_ms']} / {report['delivery_latency']['p99_ms']} ms")
print(f"{'rolling deploy':>22}: {deploy_seconds} s")
EOF
if [ -z "${NO_PLOT:-}" ]; then
  plot_timeline "$TIMELINE" --title "Rolling deploy under load ($CLIENTS clients, $RATE changes/s)" \
    --span "rolling deploy=$DEPLOY_FROM:$DEPLOY_UNTIL"
fi
if [ "$status" -ne 0 ]; then
  echo "FAILED: clients lost, repeated or reordered events, or writes were lost (see above)" >&2
  exit "$status"
fi
say "rolling deploy under load: nothing lost ($RESULT)"
