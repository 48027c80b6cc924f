#!/usr/bin/env bash
# Renders the edge's configuration into a directory nginx runs from:
#   nginx/render.sh DIR
# writes DIR/nginx.conf (from nginx.conf.template), DIR/headers.conf and
# DIR/upstreams.conf, and makes DIR/logs, DIR/cache and DIR/tmp. Then:
#   nginx -c DIR/nginx.conf            (add -g 'daemon off;' to stay in front)
# Settings, from the environment (defaults in brackets):
#   EDGE_UPSTREAMS     instances, "host:port host:port ..." (required)
#   EDGE_HTTP_PORT     [80]   plain HTTP, which only redirects to HTTPS
#   EDGE_HTTPS_PORT    [443]
#   EDGE_PUBLIC_HTTPS_PORT [EDGE_HTTPS_PORT] the HTTPS port clients see (behind
#                      a port mapping), which HTTP redirects to
#   EDGE_TLS_CERT, EDGE_TLS_KEY  PEM files [DIR/tls/cert.pem, DIR/tls/key.pem;
#                      a self-signed pair is made there when missing]
#   EDGE_WORKERS       [auto] nginx worker processes
#   EDGE_SIGNIN_RATE   [30r/m] sign-in attempts per client address, with
#   EDGE_SIGNIN_BURST  [20]
#   EDGE_API_RATE      [100r/s] API requests per bearer token (or address)
#   EDGE_MAX_FAILS     [2] failures within EDGE_FAIL_TIMEOUT [5s] that take an
#                      instance out for EDGE_FAIL_TIMEOUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: nginx/render.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
: "${EDGE_UPSTREAMS:?EDGE_UPSTREAMS must list the instances (host:port ...)}"

export EDGE_DIR=$DIR
export EDGE_HTTP_PORT=${EDGE_HTTP_PORT:-80}
export EDGE_HTTPS_PORT=${EDGE_HTTPS_PORT:-443}
export EDGE_TLS_CERT=${EDGE_TLS_CERT:-$DIR/tls/cert.pem}
export EDGE_TLS_KEY=${EDGE_TLS_KEY:-$DIR/tls/key.pem}
export EDGE_WORKERS=${EDGE_WORKERS:-auto}
export EDGE_SIGNIN_RATE=${EDGE_SIGNIN_RATE:-30r/m}
export EDGE_SIGNIN_BURST=${EDGE_SIGNIN_BURST:-20}
export EDGE_API_RATE=${EDGE_API_RATE:-100r/s}
EDGE_MAX_FAILS=${EDGE_MAX_FAILS:-2}
EDGE_FAIL_TIMEOUT=${EDGE_FAIL_TIMEOUT:-5s}
public_https_port=${EDGE_PUBLIC_HTTPS_PORT:-$EDGE_HTTPS_PORT}
if [ "$public_https_port" = 443 ]; then export EDGE_HTTPS_PORT_SUFFIX=""; else export EDGE_HTTPS_PORT_SUFFIX=":$public_https_port"; fi

mkdir -p "$DIR/logs" "$DIR/cache" "$DIR/tmp"
if [ ! -f "$EDGE_TLS_CERT" ] || [ ! -f "$EDGE_TLS_KEY" ]; then
  mkdir -p "$(dirname "$EDGE_TLS_CERT")" "$(dirname "$EDGE_TLS_KEY")"
  # A server certificate, not a CA: strict verifiers (webpki, as in rustls)
  # refuse a CA certificate presented by a server. ECDSA P-256: a handshake
  # costs the edge a fraction of an RSA-2048 one, which matters when
  # thousands of clients reconnect at once after a deploy.
  echo "==> making a self-signed certificate for localhost ($EDGE_TLS_CERT)" >&2
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$EDGE_TLS_KEY" -out "$EDGE_TLS_CERT" 2>/dev/null
fi

# Only our own variables are substituted: nginx's ($host, $uri, ...) stay.
envsubst "$(compgen -e | grep '^EDGE_' | sed 's/^/$/' | tr '\n' ' ')" \
  < "$HERE/nginx.conf.template" > "$DIR/nginx.conf.new"
mv "$DIR/nginx.conf.new" "$DIR/nginx.conf"
cp "$HERE/headers.conf" "$DIR/headers.conf"
EDGE_MAX_FAILS=$EDGE_MAX_FAILS EDGE_FAIL_TIMEOUT=$EDGE_FAIL_TIMEOUT \
  "$HERE/upstreams.sh" "$DIR/upstreams.conf" $EDGE_UPSTREAMS
