#!/usr/bin/env bash
# The production topology on this machine, as processes: a PostgreSQL
# primary and its streaming replica, Redis, N taskmaster instances, and
# nginx in front with TLS and HTTP/2 (nginx/nginx.conf.template), plus the
# readiness watcher that takes unready instances out of the edge.
#
#   scripts/cluster.sh up            start it all, print the URL; Ctrl-C stops it all
#   scripts/cluster.sh up --detach   start it all and return (stop with `down`)
#   scripts/cluster.sh deploy        rolling restart of every instance onto the
#                                    current build, one at a time, under load
#   scripts/cluster.sh status        what runs, and each instance's /readyz
#   scripts/cluster.sh down          stop everything `up --detach` started
#
# Faults, for chaos tests (loadtest/chaos.sh) and drills:
#   scripts/cluster.sh instance N kill|stop|cont|start   SIGKILL, SIGSTOP, SIGCONT, start again
#   scripts/cluster.sh redis kill|start
#   scripts/cluster.sh primary crash|start               immediate stop, as a crash
#   scripts/cluster.sh replica crash|start|pause|resume  pause/resume its WAL replay
#   scripts/cluster.sh path redis|postgres "latency_ms=200 loss=0.05"|down|clear
# `path` needs CLUSTER_FAULT_PROXIES=1 at `up`: the instances then reach Redis
# and the primary through loadtest/faultproxy (CLUSTER_FAULTPROXY
# [target/release/faultproxy], built when missing) on CLUSTER_PG_PORT + 2 and
# + 3, which adds the latency and TCP-like loss it is told to. (`tc netem`
# would do this in the kernel; many containers and sandboxes lack it.)
#
# Settings (environment): CLUSTER_INSTANCES [3], CLUSTER_HTTPS_PORT [8443],
# CLUSTER_HTTP_PORT [8080], CLUSTER_FIRST_PORT [18081] (instances take the
# ports from there), CLUSTER_REDIS_PORT [56390], CLUSTER_PG_PORT [55450]
# (the replica on the next port), CLUSTER_DIR [target/cluster],
# CLUSTER_DEPLOY_PAUSE [5] seconds between instances in a deploy. A release is
# CLUSTER_BINARY [target/release/taskmaster] and CLUSTER_WEB_DIR [web/dist];
# `up` and `deploy` build them (cargo build --release, scripts/build-web.sh
# when missing) unless they are given. Every other setting of the server
# (README) passes through to the instances, and every EDGE_* setting of
# nginx/render.sh to the edge.
#
# `up` installs what is missing (nginx with brotli, Redis, PostgreSQL) with
# apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROOT=$(pwd)
DIR=${CLUSTER_DIR:-$ROOT/target/cluster}
INSTANCES=${CLUSTER_INSTANCES:-3}
HTTPS_PORT=${CLUSTER_HTTPS_PORT:-8443}
HTTP_PORT=${CLUSTER_HTTP_PORT:-8080}
FIRST_PORT=${CLUSTER_FIRST_PORT:-18081}
REDIS_PORT=${CLUSTER_REDIS_PORT:-56390}
PG_PORT=${CLUSTER_PG_PORT:-55450}
REPLICA_PORT=$((PG_PORT + 1))
EDGE="$DIR/edge"
DATABASE="postgres://postgres@127.0.0.1:$PG_PORT/taskmaster"
REPLICA="postgres://postgres@127.0.0.1:$REPLICA_PORT/taskmaster"
FAULT_PROXIES=${CLUSTER_FAULT_PROXIES:-}
FAULTPROXY=${CLUSTER_FAULTPROXY:-$ROOT/target/release/faultproxy}
PG_PROXY_PORT=$((PG_PORT + 2))
REDIS_PROXY_PORT=$((PG_PORT + 3))
# What the instances connect to: the servers, or the fault proxies in front.
if [ -n "$FAULT_PROXIES" ]; then
  APP_DATABASE="postgres://postgres@127.0.0.1:$PG_PROXY_PORT/taskmaster"
  APP_REDIS="redis://127.0.0.1:$REDIS_PROXY_PORT"
else
  APP_DATABASE=$DATABASE
  APP_REDIS="redis://127.0.0.1:$REDIS_PORT"
fi

instance_port() { echo $((FIRST_PORT + $1 - 1)); }
instance_addresses() {
  local i
  for i in $(seq 1 "$INSTANCES"); do printf '127.0.0.1:%s ' "$(instance_port "$i")"; done
}
pg_pair() { PG_PAIR_DIR="$DIR/postgres" PRIMARY_PORT=$PG_PORT REPLICA_PORT=$REPLICA_PORT bash scripts/pg-pair.sh "$@"; }

# Waits until URL answers 2xx, for at most SECONDS.
wait_for() { # URL SECONDS [curl options]
  local url=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then return 1; fi
    sleep 0.2
  done
}

ensure_tools() {
  if ! command -v nginx >/dev/null 2>&1 || [ ! -e /etc/nginx/modules-enabled/50-mod-http-brotli-filter.conf ]; then
    apt_install nginx-light libnginx-mod-http-brotli-filter || apt_install nginx libnginx-mod-http-brotli-filter
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v curl >/dev/null 2>&1 || apt_install curl
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  command -v envsubst >/dev/null 2>&1 || apt_install gettext-base
}

BINARY=${CLUSTER_BINARY:-$ROOT/target/release/taskmaster}
WEB_DIR=${CLUSTER_WEB_DIR:-$ROOT/web/dist}

build() {
  if [ -z "${CLUSTER_BINARY:-}" ]; then
    say "building the server (cargo build --release)"
    cargo build --release --locked -p taskmaster-server
  fi
  if [ -z "${CLUSTER_WEB_DIR:-}" ] && [ ! -f web/dist/index.html ]; then
    bash scripts/build-web.sh
  fi
  [ -x "$BINARY" ] || { echo "no server binary at $BINARY" >&2; exit 1; }
  [ -f "$WEB_DIR/index.html" ] || { echo "no web build at $WEB_DIR" >&2; exit 1; }
}

# A release: the binary and the web app, with the previous release's
# builds carried in (scripts/carry-assets.sh). Prints its directory.
make_release() {
  local release
  release="$DIR/releases/$(date +%Y%m%d-%H%M%S)-$$"
  mkdir -p "$release"
  cp "$BINARY" "$release/taskmaster"
  cp -R "$WEB_DIR" "$release/web"
  if [ -L "$DIR/current" ]; then
    bash scripts/carry-assets.sh "$release/web" "$DIR/current/web" 3 2>/dev/null
  fi
  ln -sfn "$release" "$DIR/current"
  # Old releases beyond the last three go.
  ls -1d "$DIR"/releases/* | head -n -3 | xargs -r rm -rf
  echo "$release"
}

start_instance() { # N RELEASE
  local n=$1 release=$2 port
  port=$(instance_port "$n")
  env DATABASE_URL="$APP_DATABASE" DATABASE_REPLICA_URLS="$REPLICA" \
    REDIS_URL="$APP_REDIS" BIND="127.0.0.1:$port" \
    WEB_DIR="$release/web" TRUST_FORWARDED_FOR=true LOG_FORMAT="${LOG_FORMAT:-json}" \
    setsid "$release/taskmaster" serve >>"$DIR/logs/instance-$n.log" 2>&1 < /dev/null &
  echo $! > "$DIR/pids/instance-$n"
}

start_redis() {
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$DIR" --logfile "$DIR/logs/redis.log" --daemonize yes --pidfile "$DIR/pids/redis"
  local _
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "Redis did not start; see $DIR/logs/redis.log" >&2
  return 1
}

# One fault proxy per path an instance may lose: to the primary and to Redis.
start_fault_proxies() {
  if [ -z "${CLUSTER_FAULTPROXY:-}" ] && [ ! -x "$FAULTPROXY" ]; then
    say "building the fault proxy (cargo build --release -p taskmaster-faultproxy)"
    cargo build --release --locked -p taskmaster-faultproxy
  fi
  mkdir -p "$DIR/faults"
  local name listen upstream
  for name in postgres redis; do
    if [ "$name" = postgres ]; then listen=$PG_PROXY_PORT upstream=$PG_PORT; else listen=$REDIS_PROXY_PORT upstream=$REDIS_PORT; fi
    : > "$DIR/faults/$name"
    say "fault proxy for $name: 127.0.0.1:$listen -> :$upstream"
    setsid "$FAULTPROXY" --listen "127.0.0.1:$listen" --upstream "127.0.0.1:$upstream" \
      --faults "$DIR/faults/$name" >>"$DIR/logs/faultproxy-$name.log" 2>&1 < /dev/null &
    echo $! > "$DIR/pids/faultproxy-$name"
  done
}

stop_pid_file() { # FILE [SIGNAL]
  local file=$1 signal=${2:-TERM} pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

up() {
  local detach=$1
  if [ -f "$DIR/pids/running" ]; then
    echo "a cluster already runs from $DIR (scripts/cluster.sh down stops it)" >&2
    exit 1
  fi
  ensure_tools
  build
  mkdir -p "$DIR/logs" "$DIR/pids"
  touch "$DIR/pids/running"
  if [ "$detach" = no ]; then trap 'echo; down; exit 0' INT TERM; fi

  say "starting PostgreSQL: primary on 127.0.0.1:$PG_PORT, streaming replica on :$REPLICA_PORT"
  pg_pair start
  psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -qtAc \
    "select 1 from pg_database where datname = 'taskmaster'" | grep -q 1 \
    || psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -qc "create database taskmaster"

  start_redis
  if [ -n "$FAULT_PROXIES" ]; then start_fault_proxies; fi

  local release
  release=$(make_release)
  say "migrating, then starting $INSTANCES instances on ports $FIRST_PORT.. ($(basename "$release"))"
  DATABASE_URL="$DATABASE" "$release/taskmaster" migrate
  local i
  for i in $(seq 1 "$INSTANCES"); do start_instance "$i" "$release"; done
  for i in $(seq 1 "$INSTANCES"); do
    wait_for "http://127.0.0.1:$(instance_port "$i")/readyz" 60 \
      || { echo "instance $i did not become ready; see $DIR/logs/instance-$i.log" >&2; down; exit 1; }
  done

  say "starting nginx: https://localhost:$HTTPS_PORT (HTTP/2, TLS), http://localhost:$HTTP_PORT redirects"
  # shellcheck disable=SC2046
  EDGE_UPSTREAMS="$(instance_addresses)" EDGE_HTTP_PORT=$HTTP_PORT EDGE_HTTPS_PORT=$HTTPS_PORT \
    bash nginx/render.sh "$EDGE"
  nginx -e "$EDGE/logs/error.log" -c "$EDGE/nginx.conf"
  # shellcheck disable=SC2046
  setsid bash nginx/watch-readiness.sh "$EDGE" $(instance_addresses) >>"$DIR/logs/watch.log" 2>&1 < /dev/null &
  echo $! > "$DIR/pids/watch"
  wait_for "https://127.0.0.1:$HTTPS_PORT/readyz" 30 --cacert "$EDGE/tls/cert.pem" \
    || { echo "the edge does not answer; see $EDGE/logs/error.log" >&2; down; exit 1; }

  cat <<EOF

Task Master runs at https://localhost:$HTTPS_PORT  (self-signed certificate: $EDGE/tls/cert.pem)
  instances  $(instance_addresses)
  database   $DATABASE (replica $REPLICA)
  redis      redis://127.0.0.1:$REDIS_PORT
  logs       $DIR/logs, $EDGE/logs/access.log (JSON)
EOF
  if [ "$detach" = yes ]; then
    echo "Stop it with: scripts/cluster.sh down"
    return
  fi
  echo "Ctrl-C stops everything."
  while true; do sleep 3600 & wait $!; done
}

down() {
  [ -d "$DIR/pids" ] || { echo "no cluster in $DIR" >&2; return 0; }
  say "stopping the cluster in $DIR"
  stop_pid_file "$DIR/pids/watch"
  if [ -f "$EDGE/nginx.pid" ]; then
    nginx -q -e "$EDGE/logs/error.log" -c "$EDGE/nginx.conf" -s quit 2>/dev/null || true
    for _ in $(seq 1 50); do [ -f "$EDGE/nginx.pid" ] || break; sleep 0.1; done
  fi
  local file
  for file in "$DIR"/pids/instance-*; do stop_pid_file "$file"; done
  for file in "$DIR"/pids/faultproxy-*; do stop_pid_file "$file"; done
  stop_pid_file "$DIR/pids/redis"
  pg_pair stop || true
  rm -f "$DIR/pids/running"
}

# Replaces the instances one at a time: each drains (SIGTERM: it stops
# accepting, finishes its requests, closes its sockets, whose clients
# reconnect through the edge to the others and catch up), the new release
# starts on the same port, and the next waits until it is ready. The edge
# stops sending to an instance the moment it refuses connections, and the
# readiness watcher keeps it out until /readyz passes again.
deploy() {
  [ -f "$DIR/pids/running" ] || { echo "no cluster runs in $DIR (scripts/cluster.sh up)" >&2; exit 1; }
  if [ -z "${CLUSTER_NO_BUILD:-}" ]; then build; fi
  local release started i port
  release=$(make_release)
  say "rolling deploy of $(basename "$release") across $INSTANCES instances"
  started=$SECONDS
  for i in $(seq 1 "$INSTANCES"); do
    port=$(instance_port "$i")
    local t0=$SECONDS
    stop_pid_file "$DIR/pids/instance-$i" TERM
    start_instance "$i" "$release"
    wait_for "http://127.0.0.1:$port/readyz" 60 \
      || { echo "instance $i did not come back; see $DIR/logs/instance-$i.log" >&2; exit 1; }
    # Let the watcher put it back before the next one leaves.
    for _ in $(seq 1 50); do
      grep -qx "127.0.0.1:$port up" "$EDGE/upstreams.state" 2>/dev/null && break
      sleep 0.1
    done
    say "instance $i replaced in $((SECONDS - t0)) s"
    # Its clients have just reconnected to the others; let that settle before
    # the next instance sends its own clients away.
    if [ "$i" -lt "$INSTANCES" ]; then sleep "${CLUSTER_DEPLOY_PAUSE:-5}"; fi
  done
  say "deployed in $((SECONDS - started)) s"
}

status() {
  [ -f "$DIR/pids/running" ] || { echo "no cluster runs in $DIR"; return 0; }
  local i port
  for i in $(seq 1 "$INSTANCES"); do
    port=$(instance_port "$i")
    printf 'instance %s  127.0.0.1:%s  pid %s  readyz %s\n' "$i" "$port" \
      "$(cat "$DIR/pids/instance-$i" 2>/dev/null || echo -)" \
      "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz")"
  done
  echo "edge: https://localhost:$HTTPS_PORT (pid $(cat "$EDGE/nginx.pid" 2>/dev/null || echo -))"
  cat "$EDGE/upstreams.state" 2>/dev/null || true
}

# --- faults -------------------------------------------------------------

require_running() {
  [ -f "$DIR/pids/running" ] || { echo "no cluster runs in $DIR (scripts/cluster.sh up)" >&2; exit 1; }
}

pid_of() { cat "$DIR/pids/$1" 2>/dev/null || true; }

instance_fault() { # N kill|stop|cont|start
  local n=${1:?instance number} action=${2:?kill, stop, cont or start} pid
  pid=$(pid_of "instance-$n")
  case "$action" in
    kill) [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -f "$DIR/pids/instance-$n" ;;
    stop) kill -STOP "$pid" ;;
    cont) kill -CONT "$pid" ;;
    start)
      start_instance "$n" "$(readlink -f "$DIR/current")"
      wait_for "http://127.0.0.1:$(instance_port "$n")/readyz" 60 \
        || { echo "instance $n did not become ready" >&2; exit 1; } ;;
    *) echo "instance N kill|stop|cont|start" >&2; exit 2 ;;
  esac
}

redis_fault() { # kill|start
  case "${1:-}" in
    kill) kill -KILL "$(pid_of redis)" 2>/dev/null || true; rm -f "$DIR/pids/redis" ;;
    start) start_redis ;;
    *) echo "redis kill|start" >&2; exit 2 ;;
  esac
}

replica_fault() { # crash|start|pause|resume
  local replica_admin="postgres://postgres@127.0.0.1:$REPLICA_PORT/postgres"
  case "${1:-}" in
    crash|start) pg_pair "$1" replica ;;
    pause) psql "$replica_admin" -qtAc "select pg_wal_replay_pause()" >/dev/null ;;
    resume) psql "$replica_admin" -qtAc "select pg_wal_replay_resume()" >/dev/null ;;
    *) echo "replica crash|start|pause|resume" >&2; exit 2 ;;
  esac
}

path_fault() { # redis|postgres FAULT|clear
  local name=${1:-} fault=${2:-}
  case "$name" in redis|postgres) ;; *) echo "path redis|postgres FAULT|clear" >&2; exit 2 ;; esac
  [ -f "$DIR/faults/$name" ] || { echo "no fault proxies: start the cluster with CLUSTER_FAULT_PROXIES=1" >&2; exit 1; }
  if [ "$fault" = clear ]; then fault=""; fi
  echo "$fault" > "$DIR/faults/$name"
  # The proxy reads its file every 200 ms.
  sleep 0.5
}

case "${1:-}" in
  up) up "$([ "${2:-}" = --detach ] && echo yes || echo no)" ;;
  down) down ;;
  deploy) deploy ;;
  status) status ;;
  instance) require_running; instance_fault "${2:-}" "${3:-}" ;;
  redis) require_running; redis_fault "${2:-}" ;;
  primary)
    require_running
    case "${2:-}" in crash|start) pg_pair "$2" primary ;; *) echo "primary crash|start" >&2; exit 2 ;; esac ;;
  replica) require_running; replica_fault "${2:-}" ;;
  path) require_running; path_fault "${2:-}" "${3:-}" ;;
  *) sed -n '2,38p' "$0" >&2; exit 2 ;;
esac
