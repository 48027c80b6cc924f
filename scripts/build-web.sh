#!/usr/bin/env bash
# Builds the web app into web/dist, ready for the server to serve at `/`:
#   wasm32 release build -> wasm-split (lazy routes into their own modules)
#   -> wasm-bindgen -> wasm-opt -> one content-hashed directory of assets
#   -> brotli and gzip copies -> index.html that points at them.
# Installs what is missing: the wasm32 target (rustup, or on machines that
# cannot download it, Debian's Rust with the standard library built from
# source), wasm-bindgen-cli at the version in web/Cargo.lock, wasm-split-cli,
# and wasm-opt (npm's binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROOT=$(pwd)
WEB="$ROOT/web"
DIST="$WEB/dist"
WASM_TARGET=wasm32-unknown-unknown
BUILT="$ROOT/target/$WASM_TARGET/release/taskmaster-web.wasm"
# The version of wasm_split_cli_support that understands the split points
# leptos' #[lazy_route] (wasm_split_helpers 0.2) writes.
SPLIT_VERSION=0.2.4
# wasm-split moves code between modules, so it needs the linker's relocations.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Clink-args=--emit-relocs"

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

if ! cargo install --list | grep -q "^wasm_split_cli_support v$SPLIT_VERSION:"; then
  say "installing wasm-split-cli $SPLIT_VERSION (once)"
  cargo install wasm_split_cli_support --version "$SPLIT_VERSION" --features build-binary
fi

# 3. wasm-opt and the browser-test driver, from npm.
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
say "installing the web build and test tools (npm ci)"
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
command -v brotli >/dev/null 2>&1 || apt_install brotli

say "splitting lazy routes out, generating bindings, optimising the wasm for size"
STAGE="$ROOT/target/web-stage"
rm -rf "$STAGE" "$DIST"
mkdir -p "$STAGE" "$DIST/assets"
# The main module (app.wasm, then app_bg.wasm after wasm-bindgen), one module
# per lazy route, chunks they share, and __wasm_split.js, which loads them.
wasm-split-cli "$BUILT" "$STAGE" --out-name app --target web
wasm-bindgen --target web --keep-lld-exports --no-typescript --out-name app --out-dir "$STAGE" "$STAGE/app.wasm"
rm "$STAGE/app.wasm"
cp "$WEB/style.css" "$STAGE/style.css"
for module in "$STAGE"/*.wasm; do
  "$WEB/node_modules/.bin/wasm-opt" -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-reference-types --enable-multivalue --enable-mutable-globals \
    "$module" -o "$module.opt" 2> >(grep -v "unknown name subsection" >&2)
  mv "$module.opt" "$module"
done

# 4. One directory named by the hash of everything in it: the modules import
#    one another by fixed relative names, and a new build is a new directory,
#    so every asset can be cached forever and a deploy is never half old.
BUNDLE=$(cd "$STAGE" && ls | sort | xargs cat | sha256sum | cut -c1-16)
mkdir -p "$DIST/assets/$BUNDLE"
cp "$STAGE"/* "$DIST/assets/$BUNDLE/"
# The task page's module and the chunks lazy modules share are prefetched:
# the browser fetches them at idle priority once the page has loaded, so
# opening a task does not wait for the network.
PREFETCH=""
for module in $(cd "$DIST/assets/$BUNDLE" && ls split___task_route_*.wasm chunk_*.wasm 2>/dev/null); do
  PREFETCH="$PREFETCH<link rel=\"prefetch\" href=\"/assets/$BUNDLE/$module\" as=\"fetch\" type=\"application/wasm\" crossorigin>"
done
sed -e "s#{{JS}}#$BUNDLE/app.js#g" -e "s#{{WASM}}#$BUNDLE/app_bg.wasm#g" -e "s#{{CSS}}#$BUNDLE/style.css#g" \
  -e "s#{{PREFETCH}}#$PREFETCH#g" \
  "$WEB/index.html" > "$DIST/index.html"

say "precompressing (brotli, gzip)"
for file in "$DIST"/assets/*/* "$DIST/index.html"; do
  brotli -q 11 -k -f "$file"
  gzip -9 -k -f "$file"
done

MAIN="$DIST/assets/$BUNDLE/app_bg.wasm"
say "web app built in web/dist: first screen $(stat -c %s "$MAIN") bytes of wasm, $(stat -c %s "$MAIN.br") brotli; lazy modules: $(cd "$DIST/assets/$BUNDLE" && ls split_*.wasm chunk_*.wasm 2>/dev/null | grep -v '\.br$\|\.gz$' | tr '\n' ' ')"
