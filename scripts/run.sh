#!/usr/bin/env bash
# Runs Task Master with embedded defaults: without DATABASE_URL the server
# starts its own PostgreSQL under DATA_DIR (default ./data); without REDIS_URL
# it runs as a single instance. Any variable from the README's table may be
# set before calling this script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ -z "${DATABASE_URL:-}" ]; then
  say "no DATABASE_URL: the server will run its own PostgreSQL under ${DATA_DIR:-./data}"
  ensure_postgres_binaries
fi
bash scripts/build-web.sh
say "building the server (release)"
cargo build --release --locked -p taskmaster-server
say "starting taskmaster on ${BIND:-127.0.0.1:8080} (Ctrl-C stops it and its database)"
exec ./target/release/taskmaster "$@"
