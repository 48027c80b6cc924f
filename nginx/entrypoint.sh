#!/usr/bin/env bash
# The edge container: render the configuration, start the readiness watcher,
# run nginx in the foreground (its logs on stdout and stderr).
set -euo pipefail
bash /opt/edge/render.sh "$EDGE_DIR"
ln -sf /dev/stdout "$EDGE_DIR/logs/access.log"
ln -sf /dev/stderr "$EDGE_DIR/logs/error.log"
# The watcher reloads nginx once it runs; it starts after nginx does.
( sleep 2; exec bash /opt/edge/watch-readiness.sh "$EDGE_DIR" $EDGE_UPSTREAMS ) &
exec nginx -e "$EDGE_DIR/logs/error.log" -c "$EDGE_DIR/nginx.conf" -g 'daemon off;'
