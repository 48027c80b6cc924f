#!/bin/sh
# The replica: on first start, copy the primary ($PRIMARY_HOST, as the
# `replicator` role, password in $PGPASSWORD) with its standby settings;
# then run as a hot standby that follows it.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$PRIMARY_HOST" -U replicator; do sleep 1; done
  pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -R -X stream
  chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c max_connections=300
