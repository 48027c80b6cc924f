#!/usr/bin/env bash
# Keeps the edge's upstreams.conf to the instances that can serve:
#   nginx/watch-readiness.sh EDGE_DIR host:port ...
# nginx (open source) checks instances only passively, by failed requests; an
# instance that answers but cannot serve (its database unreachable, say)
# would keep getting traffic. This asks every instance's /readyz each
# EDGE_WATCH_INTERVAL seconds [1] (EDGE_WATCH_TIMEOUT [1] seconds each),
# marks those that fail `down`, and reloads nginx when that changes. Marked
# down, an instance keeps its place on the hash ring, so nobody else's
# instance changes. When no instance is ready at all, all stay in: a shared
# dependency is down, and whatever still works (cached reads, assets) should.
# The current view is in EDGE_DIR/upstreams.state ("host:port up|down" lines).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: nginx/watch-readiness.sh EDGE_DIR host:port ...}
shift
INSTANCES=("$@")
INTERVAL=${EDGE_WATCH_INTERVAL:-1}
TIMEOUT=${EDGE_WATCH_TIMEOUT:-1}
previous=""
while true; do
  state=""
  listed=()
  ready=0
  for instance in "${INSTANCES[@]}"; do
    if curl -fsS -o /dev/null --max-time "$TIMEOUT" "http://$instance/readyz" 2>/dev/null; then
      state+="$instance up"$'\n'
      listed+=("$instance")
      ready=$((ready + 1))
    else
      state+="$instance down"$'\n'
      listed+=("$instance=down")
    fi
  done
  if [ "$ready" -eq 0 ]; then
    listed=("${INSTANCES[@]}")
  fi
  if [ "$state" != "$previous" ]; then
    "$HERE/upstreams.sh" "$DIR/upstreams.conf" "${listed[@]}"
    if nginx -q -e "$DIR/logs/error.log" -c "$DIR/nginx.conf" -s reload; then
      printf '%s' "$state" > "$DIR/upstreams.state.new" && mv "$DIR/upstreams.state.new" "$DIR/upstreams.state"
      echo "edge: $(echo "$state" | tr '\n' ' ')" >&2
      previous=$state
    fi
  fi
  sleep "$INTERVAL"
done
