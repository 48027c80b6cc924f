#!/usr/bin/env bash
# Carries the previous releases' web builds into a new one:
#   scripts/carry-assets.sh NEW_WEB_DIR PREVIOUS_WEB_DIR [KEEP]
# Each build lives in NEW_WEB_DIR/assets/<hash>/. A page loaded before a
# deploy keeps asking for its own build's lazily loaded modules, from
# whichever instance the edge picks, for as long as it stays open; so every
# release also serves the builds of the KEEP-1 [2] releases before it.
# NEW_WEB_DIR/assets/RELEASES lists the builds it serves, oldest first.
set -euo pipefail
NEW=${1:?usage: scripts/carry-assets.sh NEW_WEB_DIR PREVIOUS_WEB_DIR [KEEP]}
OLD=${2:?usage: scripts/carry-assets.sh NEW_WEB_DIR PREVIOUS_WEB_DIR [KEEP]}
KEEP=${3:-3}

# The build a web dir's index.html loads.
current_build() {
  grep -o '/assets/[0-9a-f]\{16\}/' "$1/index.html" 2>/dev/null | head -1 | cut -d/ -f3
}
# The builds a web dir serves, oldest first.
served_builds() {
  if [ -f "$1/assets/RELEASES" ]; then cat "$1/assets/RELEASES"; else current_build "$1"; fi
}

current=$(current_build "$NEW")
[ -n "$current" ] || { echo "$NEW/index.html names no build" >&2; exit 1; }
mapfile -t builds < <({ served_builds "$OLD" 2>/dev/null || true; echo "$current"; } \
  | awk 'NF && !seen[$0]++' | grep -vx "$current" || true)
builds+=("$current")
if [ "${#builds[@]}" -gt "$KEEP" ]; then builds=("${builds[@]:${#builds[@]}-KEEP}"); fi
for build in "${builds[@]}"; do
  if [ "$build" != "$current" ] && [ ! -d "$NEW/assets/$build" ]; then
    if [ -d "$OLD/assets/$build" ]; then
      cp -R "$OLD/assets/$build" "$NEW/assets/$build"
    else
      echo "warning: build $build is no longer in $OLD; pages still on it will reload" >&2
    fi
  fi
done
served=()
for build in "${builds[@]}"; do
  [ -d "$NEW/assets/$build" ] && served+=("$build")
done
printf '%s\n' "${served[@]}" > "$NEW/assets/RELEASES"
echo "serving builds: ${served[*]}" >&2
