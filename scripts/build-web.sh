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

# 1. A compiler that can build for wasm32, with the standard library built
#    from source with the app's size settings (opt-level z, panic=abort):
#    about a tenth less wasm than the prebuilt one. In order of preference:
#    rustup's toolchain with its rust-src component; Debian's rustc-web,
#    whose standard library source is packaged (machines that cannot
#    download rustup components); rustup's prebuilt wasm32 target.
# WASM_TOOLCHAIN=debian forces the second route (to check it where both work).
# With std built here, panics abort at once (`immediate-abort`): no panic
# messages or unwinding tables in the wasm; index.html shows the crash.
BUILD_STD=(RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none")
have_rustup_target() {
  rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET" \
    || rustup target add "$WASM_TARGET" >/dev/null 2>&1
}
have_rustup_std_source() {
  [ "${WASM_TOOLCHAIN:-}" != debian ] && have_rustup_target || return 1
  rustup component list --installed 2>/dev/null | grep -q '^rust-src' \
    || rustup component add rust-src >/dev/null 2>&1
}
can_use_debian_rust() {
  [ -e /etc/debian_version ] && command -v apt-get >/dev/null 2>&1
}
if have_rustup_std_source; then
  say "building the web app (rustup's $WASM_TARGET target, std from its source)"
  (cd "$WEB" && env "${BUILD_STD[@]}" cargo build --locked --release --target "$WASM_TARGET" --target-dir "$ROOT/target")
elif can_use_debian_rust; then
  say "building the web app with Debian's Rust, std from its source"
  apt_install rustc-web cargo-web rust-web-src libstd-rust-web-dev lld-22
  rustup toolchain list | grep -q '^debweb' || rustup toolchain link debweb /usr
  # Only this build sees these settings; host builds and tests stay on the
  # stable toolchain.
  (cd "$WEB" && env "${BUILD_STD[@]}" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
    cargo +debweb build --locked --release --target "$WASM_TARGET" --target-dir "$ROOT/target")
elif have_rustup_target; then
  say "building the web app (rustup's prebuilt $WASM_TARGET standard library)"
  (cd "$WEB" && cargo build --locked --release --target "$WASM_TARGET" --target-dir "$ROOT/target")
else
  echo "no way to build for $WASM_TARGET here: install rustup's target or Debian's rustc-web" >&2
  exit 1
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
# The lazy modules: index.html fetches a page's own (and the chunks lazy
# modules share) early where the page opened is a task's or the projects',
# and all of them when the page is idle or a link to a task is pointed at.
modules_list() { # file patterns, expanded in the build's directory
  # shellcheck disable=SC2068
  (cd "$DIST/assets/$BUNDLE" && ls $@ 2>/dev/null || true) | sed "s#.*#\"/assets/$BUNDLE/&\"#" | paste -sd, -
}
# A page's own: its module and the chunks it needs, as the loader lists them.
page_modules() { # module name part
  node "$ROOT/scripts/wasm-split-deps.mjs" "$DIST/assets/$BUNDLE/__wasm_split.js" "$1" "/assets/$BUNDLE/"
}
TASK_MODULES=$(page_modules task_route)
PROJECTS_MODULES=$(page_modules projects_route)
LAZY_MODULES=$(modules_list 'split_*.wasm' 'chunk_*.wasm')
sed -e "s#{{JS}}#$BUNDLE/app.js#g" -e "s#{{WASM}}#$BUNDLE/app_bg.wasm#g" -e "s#{{CSS}}#$BUNDLE/style.css#g" \
  -e "s#{{TASK_MODULES}}#$TASK_MODULES#g" -e "s#{{PROJECTS_MODULES}}#$PROJECTS_MODULES#g" -e "s#{{LAZY_MODULES}}#$LAZY_MODULES#g" -e "s#{{BUILD}}#$BUNDLE#g" \
  "$WEB/index.html" > "$DIST/index.html"
# The service worker precaches every asset of this build (lazy modules too,
# so every screen opens offline); a new build changes the script, which is
# how browsers find a deploy.
ASSET_LIST=$(cd "$DIST/assets/$BUNDLE" && ls | sed "s#.*#\"/assets/$BUNDLE/&\"#" | paste -sd, -)
sed -e "s#{{BUILD}}#$BUNDLE#g" -e "s#{{ASSETS}}#$ASSET_LIST#" "$WEB/sw.js" > "$DIST/sw.js"

say "precompressing (brotli, gzip)"
for file in "$DIST"/assets/*/* "$DIST/index.html"; do
  brotli -q 11 -k -f "$file"
  gzip -9 -k -f "$file"
done

MAIN="$DIST/assets/$BUNDLE/app_bg.wasm"
say "web app built in web/dist: first screen $(stat -c %s "$MAIN") bytes of wasm, $(stat -c %s "$MAIN.br") brotli; lazy modules: $(cd "$DIST/assets/$BUNDLE" && ls split_*.wasm chunk_*.wasm 2>/dev/null | grep -v '\.br$\|\.gz$' | tr '\n' ' ')"
