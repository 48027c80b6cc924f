#!/usr/bin/env bash
# A private PostgreSQL primary and streaming replica on loopback ports, for
# the local cluster (scripts/cluster.sh) and the replica benchmarks
# (loadtest/cache-bench.sh):
#
#   scripts/pg-pair.sh start     # primary on 127.0.0.1:55440, replica on :55441
#   PG=postgres://postgres@127.0.0.1:55440 REPLICA_URL=postgres://postgres@127.0.0.1:55441 \
#     loadtest/cache-bench.sh
#   scripts/pg-pair.sh stop
#   scripts/pg-pair.sh crash primary|replica   # stop one at once, as a crash would
#   scripts/pg-pair.sh start primary|replica   # start one again (or both: start)
#
# Files live under PG_PAIR_DIR [target/pg-pair]; ports PRIMARY_PORT, REPLICA_PORT. As root, the servers run as `postgres`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

DIR=${PG_PAIR_DIR:-$(pwd)/target/pg-pair}
PRIMARY_PORT=${PRIMARY_PORT:-55440}
REPLICA_PORT=${REPLICA_PORT:-55441}

as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

running() { # SERVER
  as_owner "$(pg_bin_dir)/pg_ctl" -D "$DIR/$1" status >/dev/null 2>&1
}

start() { # [primary|replica]
  local only=${1:-}
  ensure_postgres_binaries
  local bin
  bin=$(pg_bin_dir)
  mkdir -p "$DIR"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
  if [ ! -f "$DIR/primary/PG_VERSION" ]; then
    say "initialising the primary in $DIR/primary"
    as_owner "$bin/initdb" -D "$DIR/primary" -U postgres --auth=trust >/dev/null
    echo "host replication all 127.0.0.1/32 trust" | as_owner tee -a "$DIR/primary/pg_hba.conf" >/dev/null
  fi
  if [ "$only" != replica ] && ! running primary; then
    say "starting the primary on 127.0.0.1:$PRIMARY_PORT"
    as_owner "$bin/pg_ctl" -D "$DIR/primary" -l "$DIR/primary.log" -w start \
      -o "-c listen_addresses=127.0.0.1 -c port=$PRIMARY_PORT -c unix_socket_directories='$DIR' -c max_connections=300 -c wal_level=replica" >/dev/null
  fi
  [ "$only" != primary ] || return 0
  if [ ! -f "$DIR/replica/PG_VERSION" ]; then
    say "copying the primary into the replica ($DIR/replica)"
    as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DIR/replica" -R -X stream
  fi
  if ! running replica; then
    say "starting the replica on 127.0.0.1:$REPLICA_PORT"
    as_owner "$bin/pg_ctl" -D "$DIR/replica" -l "$DIR/replica.log" -w start \
      -o "-c listen_addresses=127.0.0.1 -c port=$REPLICA_PORT -c unix_socket_directories='$DIR' -c max_connections=300 -c hot_standby=on" >/dev/null
  fi
  say "primary postgres://postgres@127.0.0.1:$PRIMARY_PORT, replica postgres://postgres@127.0.0.1:$REPLICA_PORT"
}

stop() {
  local bin
  bin=$(pg_bin_dir)
  for server in replica primary; do
    [ -f "$DIR/$server/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$DIR/$server" -m fast -w stop >/dev/null || true
  done
}

# Stops SERVER at once, without a checkpoint or goodbyes to its clients:
# what a crash (or kill -9 of the postmaster) leaves behind.
crash() { # primary|replica
  case "${1:-}" in primary|replica) ;; *) echo "crash primary|replica" >&2; exit 2 ;; esac
  as_owner "$(pg_bin_dir)/pg_ctl" -D "$DIR/$1" -m immediate -w stop >/dev/null
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  crash) crash "${2:-}" ;;
  *) echo "usage: $0 start [primary|replica] | stop | crash primary|replica" >&2; exit 2 ;;
esac
