#!/usr/bin/env bash
# Writes the edge's list of instances:
#   nginx/upstreams.sh FILE host:port[=down] ...
# An instance marked `=down` stays listed (so the hash ring, and with it every
# other client's instance, stays put) but gets no requests. The file is
# replaced atomically; `nginx -s reload` picks it up without dropping sockets.
set -euo pipefail
FILE=${1:?usage: nginx/upstreams.sh FILE host:port[=down] ...}
shift
[ $# -gt 0 ] || { echo "no instances given" >&2; exit 2; }
{
  echo "# Written by nginx/upstreams.sh; max_fails/fail_timeout are the passive health check."
  for instance in "$@"; do
    address=${instance%=down}
    if [ "$address" != "$instance" ]; then
      echo "server $address down;"
    else
      echo "server $address max_fails=${EDGE_MAX_FAILS:-2} fail_timeout=${EDGE_FAIL_TIMEOUT:-5s};"
    fi
  done
} > "$FILE.new"
mv "$FILE.new" "$FILE"
