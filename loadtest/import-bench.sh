#!/usr/bin/env bash
# How long a Task Master file takes to import and to export again, through
# the API of one release instance: plans of 100, 1,000 and 5,000 tasks and
# subtasks (a quarter top-level, three subtasks each, every task depending
# on the one before, long details: 1,000 tasks is about 2 MB), each
# imported ROUNDS times into new projects, then exported; and imported
# ROUNDS times more as background jobs (Prefer: respond-async), timed from
# the request until the job is done.
#
#   loadtest/import-bench.sh [ROUNDS]     default 3
#
# Writes loadtest/results/import.{json,md}. Uses BENCH_DATABASE_URL (default:
# the PostgreSQL on 127.0.0.1:5432, a new database per run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ROUNDS=${1:-3}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB="tm_import_$(date +%s)"
PORT=18210
WORK=$(mktemp -d)

if [ -z "${NO_BUILD:-}" ]; then
  say "building the release server"
  cargo build --release --locked -p taskmaster-server
fi
psql "$ADMIN_URL" -qc "create database $DB"
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL="${ADMIN_URL%/*}/$DB" BIND="127.0.0.1:$PORT" RUST_LOG=warn \
  API_REQUESTS_PER_TOKEN_PER_SECOND=0 ./target/release/taskmaster >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -fs "http://127.0.0.1:$PORT/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","name":"Bench","password":"correct horse battery"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

python3 - "$WORK" <<'PY'
import json, sys
details = "Implementation notes, acceptance criteria and links. " * 38
for total in (100, 1000, 5000):
    tasks = []
    for top in range(1, total // 4 + 1):
        tasks.append({
            "id": top, "title": f"Task {top}", "description": "What and why.",
            "details": details, "testStrategy": details, "status": "pending",
            "dependencies": [top - 1] if top > 1 else [], "priority": "medium",
            "subtasks": [{"id": s, "title": f"Step {top}.{s}", "description": "",
                          "details": details, "status": "pending",
                          "dependencies": [s - 1] if s > 1 else []} for s in (1, 2, 3)],
        })
    with open(f"{sys.argv[1]}/plan-{total}.json", "w") as f:
        f.write(json.dumps({"tasks": tasks}, indent=2))
PY

say "importing and exporting ($ROUNDS rounds per size)"
: >"$WORK/times"
for total in 100 1000 5000; do
  file="$WORK/plan-$total.json"
  for round in $(seq 1 "$ROUNDS"); do
    answer=$(curl -fs -w '\n%{time_total}' "http://127.0.0.1:$PORT/api/v1/imports" \
      -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' --data-binary @"$file")
    import_seconds=$(tail -n1 <<<"$answer")
    id=$(head -n -1 <<<"$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    export_seconds=$(curl -fs -o "$WORK/export.json" -w '%{time_total}' \
      "http://127.0.0.1:$PORT/api/v1/imports/$id/tasks.json" -H "authorization: Bearer $TOKEN")
    same=$(cmp -s "$file" "$WORK/export.json" && echo yes || echo no)
    # The same file as a background job (Prefer: respond-async): from the
    # request to the job done, polling its status every 10 ms.
    background_seconds=$(python3 - "$PORT" "$TOKEN" "$file" <<'PY'
import json, sys, time, urllib.request
port, token, path = sys.argv[1:]
base = f"http://127.0.0.1:{port}"
headers = {"authorization": f"Bearer {token}"}
started = time.monotonic()
request = urllib.request.Request(f"{base}/api/v1/imports", data=open(path, "rb").read(), method="POST",
    headers={**headers, "content-type": "application/json", "prefer": "respond-async"})
job = json.load(urllib.request.urlopen(request, timeout=60))
while True:
    status = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{base}/api/v1/jobs/{job['id']}", headers=headers), timeout=10))
    if status["state"] == "done":
        break
    if status["state"] == "dead" or time.monotonic() - started > 120:
        sys.exit(f"the import job did not finish: {status}")
    time.sleep(0.01)
print(f"{time.monotonic() - started:.4f}")
PY
)
    echo "$total $(stat -c %s "$file") $import_seconds $export_seconds $same $background_seconds" >>"$WORK/times"
  done
done

python3 - "$WORK/times" <<'PY' | tee loadtest/results/import.md
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    total, size, imported, exported, same, background = line.split()
    row = rows.setdefault(int(total), {"bytes": int(size), "import_s": [], "export_s": [],
                                       "background_import_s": [], "byte_identical": True})
    row["import_s"].append(float(imported))
    row["export_s"].append(float(exported))
    row["background_import_s"].append(float(background))
    row["byte_identical"] &= same == "yes"
json.dump(rows, open("loadtest/results/import.json", "w"), indent=2)
print("| Tasks and subtasks | File | Import (median) | As a background job (median) | Export (median) | Export byte-identical |")
print("| --- | --- | --- | --- | --- | --- |")
for total, row in rows.items():
    print(f"| {total:,} | {row['bytes'] / 1e6:.1f} MB | {statistics.median(row['import_s']) * 1000:.0f} ms | "
          f"{statistics.median(row['background_import_s']) * 1000:.0f} ms | "
          f"{statistics.median(row['export_s']) * 1000:.0f} ms | {'yes' if row['byte_identical'] else 'no'} |")
PY
say "written to loadtest/results/import.json and .md"
