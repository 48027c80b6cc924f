#!/usr/bin/env bash
# Builds the web app into web/dist, ready for the server to serve at `/`:
#   wasm32 release build -> wasm-bindgen -> wasm-opt -> content-hashed names
#   -> brotli and gzip copies -> index.html that points at them.
# Installs what is missing: the wasm32 target (rustup, or on machines that
# cannot download it, Debian's Rust with the standard library built from
# source), wasm-bindgen-cli at the version in web/Cargo.lock, and wasm-opt
# (npm's binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROOT=$(pwd)
WEB="$ROOT/web"
DIST="$WEB/dist"
WASM_TARGET=wasm32-unknown-unknown
BUILT="$ROOT/target/$WASM_TARGET/release/taskmaster-web.wasm"

# 1. A compiler that can build for wasm32: the rustup target when it is (or
#    can be) installed; otherwise Debian's rustc-web, whose standard library
#    source lets cargo build std for wasm32 itself.
# WASM_TOOLCHAIN=debian forces the second route (to check it where both work).
build_with_rustup_target() {
  [ "${WASM_TOOLCHAIN:-}" != debian ] || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET" \
    || rustup target add "$WASM_TARGET" >/dev/null 2>&1
}
if build_with_rustup_target; then
  say "building the web app (rustup's $WASM_TARGET target)"
  (cd "$WEB" && cargo build --locked --release --target "$WASM_TARGET" --target-dir "$ROOT/target")
else
  say "rustup cannot add $WASM_TARGET here: using Debian's Rust and building std from source"
  apt_install rustc-web cargo-web rust-web-src libstd-rust-web-dev lld-22
  rustup toolchain list | grep -q '^debweb' || rustup toolchain link debweb /usr
  # Only this build sees these settings; host builds and tests stay on the
  # stable toolchain.
  (cd "$WEB" && RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
    cargo +debweb build --locked --release --target "$WASM_TARGET" --target-dir "$ROOT/target")
fi

# 2. wasm-bindgen, exactly the version the app links against.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$WEB/Cargo.lock")
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $BINDGEN_VERSION (once)"
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION"
fi

# 3. wasm-opt and the browser-test driver, from npm.
say "installing the web build and test tools (npm ci)"
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
command -v brotli >/dev/null 2>&1 || apt_install brotli

say "generating bindings and optimising the wasm for size"
STAGE="$ROOT/target/web-stage"
rm -rf "$STAGE" "$DIST"
mkdir -p "$STAGE" "$DIST/assets"
wasm-bindgen --target web --no-typescript --out-dir "$STAGE" --out-name app "$BUILT"
"$WEB/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-multivalue --enable-mutable-globals \
  "$STAGE/app_bg.wasm" -o "$STAGE/app.wasm"

# 4. Content-hashed names: a changed file gets a new name, so assets can be
#    cached forever and a deploy is never half old, half new.
hashed() { # SOURCE NAME EXT
  local hash
  hash=$(sha256sum "$1" | cut -c1-16)
  cp "$1" "$DIST/assets/$2-$hash.$3"
  echo "$2-$hash.$3"
}
JS=$(hashed "$STAGE/app.js" app js)
WASM=$(hashed "$STAGE/app.wasm" app wasm)
CSS=$(hashed "$WEB/style.css" style css)
sed -e "s/{{JS}}/$JS/g" -e "s/{{WASM}}/$WASM/g" -e "s/{{CSS}}/$CSS/g" "$WEB/index.html" > "$DIST/index.html"

say "precompressing (brotli, gzip)"
for file in "$DIST"/assets/* "$DIST/index.html"; do
  brotli -q 11 -k -f "$file"
  gzip -9 -k -f "$file"
done

say "web app built in web/dist: $(stat -c %s "$DIST/assets/$WASM") bytes of wasm, $(stat -c %s "$DIST/assets/$WASM.br") brotli"
