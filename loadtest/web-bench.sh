#!/usr/bin/env bash
# Web app benchmark: a cold load of a 10,000-task board in headless Chromium
# against a release server, three times. Reports first contentful paint, the
# board's first rows (interactive), all tasks loaded, DOM rows while scrolling
# to the end, the JS heap after it, and the wasm's size raw and brotli.
#
#   loadtest/web-bench.sh
#
# Uses BENCH_DATABASE_URL (default: the PostgreSQL on 127.0.0.1:5432, a new
# database per run). Writes loadtest/results/web-10000.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB="tm_web_bench_$(date +%s)"
DB_URL="${ADMIN_URL%/*}/$DB"
PORT=18180
BASE="http://127.0.0.1:$PORT"
RESULT=loadtest/results/web-10000.json

bash scripts/build-web.sh
say "building the release server"
cargo build --release --locked -p taskmaster-server
psql "$ADMIN_URL" -qc "create database $DB"
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" || true
}
trap cleanup EXIT
DATABASE_URL="$DB_URL" BIND="127.0.0.1:$PORT" RUST_LOG=warn ./target/release/taskmaster >target/web-bench.log 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.2; done

say "seeding 10,000 tasks"
AUTH=$(curl -fsS -XPOST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","name":"Bench User","password":"correct horse battery"}')
TOKEN=$(node -e 'console.log(JSON.parse(process.argv[1]).token)' "$AUTH")
USER_ID=$(node -e 'console.log(JSON.parse(process.argv[1]).user.id)' "$AUTH")
PROJECT=$(curl -fsS -XPOST "$BASE/api/v1/projects" -H 'content-type: application/json' \
  -H "authorization: Bearer $TOKEN" -d '{"name":"Ten thousand"}' | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')
psql "$DB_URL" -q <<SQL
insert into tasks (project_id, task_id, title, status, priority)
select '$PROJECT', n, 'Task number ' || n,
       (array['pending','in-progress','review','done','deferred','cancelled','blocked'])[1 + n % 7]::task_status,
       (array['critical','high','medium','low'])[1 + n % 4]::task_priority
from generate_series(1, 10000) as n;
update projects set last_task_id = 10000 where project_id = '$PROJECT';
SQL

USER_JSON="{\"id\":\"$USER_ID\",\"email\":\"bench@example.com\",\"token\":\"$TOKEN\",\"name\":\"Bench User\"}"
RUNS=()
for run in 1 2 3; do
  say "cold load $run of 3"
  line=$(cd web && node e2e/run.mjs scale \
    "{\"base\":\"$BASE\",\"project\":\"$PROJECT\",\"users\":[$USER_JSON],\"artifacts\":\"../target/web-bench\"}" </dev/null | tail -1)
  RUNS+=("$line")
done
WASM=$(ls web/dist/assets/*/app_bg.wasm)
node -e '
  const runs = process.argv.slice(3).map((line) => JSON.parse(line).result);
  const report = { wasm_bytes: +process.argv[1], wasm_brotli_bytes: +process.argv[2], runs };
  require("fs").writeFileSync("'"$RESULT"'", JSON.stringify(report, null, 1) + "\n");
  console.log(JSON.stringify(report, null, 1));
' "$(stat -c %s "$WASM")" "$(stat -c %s "$WASM.br")" "${RUNS[@]}"
say "result written to $RESULT"
