# Helpers shared by run.sh and test.sh. Source it; it does nothing by itself.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
# apt_install PACKAGE... : installs Debian packages that are missing.
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "please install: ${missing[*]} (no apt-get here)"
    return 1
  fi
  if [ -z "$APT_UPDATED" ]; then
    say "updating the Debian package lists"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Directory holding initdb and pg_ctl (newest Debian PostgreSQL), or nothing.
pg_bin_dir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

# Makes sure the PostgreSQL server programs are installed.
ensure_postgres_binaries() {
  if [ -z "$(pg_bin_dir)" ]; then
    apt_install postgresql
  fi
}

# plot_timeline CSV [plot.py options]: draws a loadgen timeline as a PNG beside
# it (loadtest/plot.py), with matplotlib from PyPI in a virtualenv of its own
# (target/tools/plot-venv). A plot that cannot be drawn is reported, not fatal.
plot_timeline() {
  local venv
  venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/tools/plot-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    say "installing matplotlib (pip, into target/tools/plot-venv) for the plots"
    { python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }; } \
      && "$venv/bin/pip" install --quiet --disable-pip-version-check matplotlib \
      || { say "matplotlib could not be installed; no plot"; return 0; }
  fi
  "$venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/../loadtest/plot.py" "$@" || say "plotting $1 failed"
}
