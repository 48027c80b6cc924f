#!/usr/bin/env bash
# Runs every check and test. Installs or starts what the tests need:
# PostgreSQL (the machine's on 127.0.0.1:5432 when it answers, else a private
# one on port 55432), Redis (127.0.0.1:6379, else a private one on 56379),
# Node's socket.io-client, Debian's Chromium for the browser tests, the web
# app's build (scripts/build-web.sh), cargo-nextest, and the Python test tools
# (kubernetes-validate, schemathesis), Prometheus and Alertmanager.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROOT=$(pwd)
RUN_DIR="$ROOT/target/test-services"
mkdir -p "$RUN_DIR"
STARTED_PG=""
STARTED_REDIS=""

cleanup() {
  if [ -n "$STARTED_PG" ]; then
    say "stopping the private test PostgreSQL"
    pg_as_owner "$(pg_bin_dir)/pg_ctl" -D "$RUN_DIR/postgres" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$STARTED_REDIS" ]; then
    say "stopping the private test Redis"
    redis-cli -p 56379 shutdown nosave >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# PostgreSQL refuses to run as root; the postgres system user owns the cluster then.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_answers() { # URL
  command -v psql >/dev/null 2>&1 && psql "$1" -qtAc 'select 1' >/dev/null 2>&1
}

setup_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    say "tests use PostgreSQL at TEST_DATABASE_URL"
    return
  fi
  apt_install postgresql-client >/dev/null 2>&1 || true
  local machine="postgres://postgres@127.0.0.1:5432/postgres"
  if [ -z "${TEST_PRIVATE_SERVICES:-}" ] && postgres_answers "$machine"; then
    say "tests use the PostgreSQL on 127.0.0.1:5432"
    export TEST_DATABASE_URL="$machine"
    return
  fi
  ensure_postgres_binaries
  local bin
  bin=$(pg_bin_dir)
  say "starting a private test PostgreSQL on 127.0.0.1:55432 ($RUN_DIR/postgres)"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$RUN_DIR"; fi
  if [ ! -f "$RUN_DIR/postgres/PG_VERSION" ]; then
    pg_as_owner "$bin/initdb" -D "$RUN_DIR/postgres" -U postgres --auth=trust --no-sync >/dev/null
  fi
  pg_as_owner "$bin/pg_ctl" -D "$RUN_DIR/postgres" -l "$RUN_DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=55432 -c unix_socket_directories='$RUN_DIR' -c fsync=off -c max_connections=300" \
    start >/dev/null
  STARTED_PG=1
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:55432/postgres"
}

setup_redis() {
  if [ -n "${TEST_REDIS_URL:-}" ]; then
    say "tests use Redis at TEST_REDIS_URL"
    return
  fi
  if [ -z "${TEST_PRIVATE_SERVICES:-}" ] && command -v redis-cli >/dev/null 2>&1 \
     && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; then
    say "tests use the Redis on 127.0.0.1:6379"
    export TEST_REDIS_URL="redis://127.0.0.1:6379"
    return
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  say "starting a private test Redis on 127.0.0.1:56379"
  redis-server --bind 127.0.0.1 --port 56379 --save '' --appendonly no --daemonize yes \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" >/dev/null
  STARTED_REDIS=1
  export TEST_REDIS_URL="redis://127.0.0.1:56379"
}

# The real-time tests drive the official socket.io-client with Node, and
# start a Redis of their own to kill and restart it.
ensure_test_tools() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  say "installing the Socket.IO test client (npm ci)"
  (cd server/tests/node && npm ci --no-audit --no-fund --loglevel=error)
}

# The browser tests drive Debian's Chromium through playwright-core (which
# build-web.sh installs with the web app's other npm tools).
ensure_browser() {
  command -v chromium >/dev/null 2>&1 || apt_install chromium
}

# The edge tests run Debian's nginx with the brotli module; the deployment
# tests render the Kubernetes manifests with `kubectl kustomize` and check
# them with kubernetes-validate; the API is fuzzed against its OpenAPI
# document with schemathesis (both from PyPI, in a virtualenv of their own).
ensure_deploy_tools() {
  if ! command -v nginx >/dev/null 2>&1 || [ ! -e /etc/nginx/modules-enabled/50-mod-http-brotli-filter.conf ]; then
    apt_install nginx libnginx-mod-http-brotli-filter
  fi
  command -v envsubst >/dev/null 2>&1 || apt_install gettext-base
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client
  local venv="$ROOT/target/test-tools/venv"
  if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/schemathesis" ]; then
    say "installing kubernetes-validate and schemathesis (pip, into target/test-tools/venv)"
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" 2>/dev/null \
      || { apt_install python3-venv && python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate 'schemathesis>=4,<5'
  fi
}

# The monitoring tests check the alert rules with promtool and run a real
# Prometheus and Alertmanager (Debian's packages) against a test server.
ensure_monitoring_tools() {
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    apt_install prometheus prometheus-alertmanager
  fi
}

# The fuzz targets (fuzz/) build with cargo-fuzz, which passes the stable
# toolchain sanitizer flags it accepts under RUSTC_BOOTSTRAP=1.
ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (once)"
    cargo install cargo-fuzz --locked
  fi
}

# Each fuzz target for FUZZ_SECONDS (default 20) seconds, starting from its
# committed corpus (read only: what it finds goes to target/fuzz-corpus).
# Built unoptimised (`--dev`): an optimised instrumented build of the server
# takes ten minutes on two cores, and a bounded run needs coverage more than
# speed; the long runs in the README use the optimised build.
run_fuzzers() {
  local seconds=${FUZZ_SECONDS:-20} target
  say "fuzzing each target for $seconds s (cargo fuzz, libFuzzer)"
  for target in $(cargo fuzz list --fuzz-dir fuzz); do
    mkdir -p "target/fuzz-corpus/$target"
    local log="target/fuzz-corpus/$target.log" status=0
    RUSTC_BOOTSTRAP=1 cargo fuzz run --dev "$target" --fuzz-dir fuzz --target-dir target/fuzz \
      "target/fuzz-corpus/$target" "fuzz/corpus/$target" \
      -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" | sed "s/^/  $target: /" || true
    if [ "$status" -ne 0 ]; then
      tail -n 60 "$log" >&2
      echo "fuzz target $target failed (its input is saved under fuzz/artifacts/$target)" >&2
      exit 1
    fi
  done
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest (once)"
    cargo install cargo-nextest --locked
  fi
}

setup_postgres
setup_redis
ensure_test_tools
ensure_browser
ensure_deploy_tools
ensure_monitoring_tools
ensure_nextest
ensure_cargo_fuzz
bash scripts/build-web.sh

say "checking formatting"
cargo fmt --all --check
(cd web && cargo fmt --check)
say "running clippy"
cargo clippy --locked --all-targets -- -D warnings
(cd web && cargo clippy --locked --all-targets --target-dir ../target -- -D warnings)
say "building the load generator and the fault proxy (the cluster, chaos and bulkhead tests drive them)"
cargo build --locked -p taskmaster-loadgen -p taskmaster-faultproxy
say "running the tests"
cargo nextest run --locked --workspace --profile ci
run_fuzzers
