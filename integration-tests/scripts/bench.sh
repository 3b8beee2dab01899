#!/usr/bin/env bash
# Runs one load-generator scenario, the bare-gRPC baseline and the machine's ceilings
# (pgbench with a declaration-shaped transaction, redis-benchmark EVAL) in one run,
# and prints the ratios.
#
#   integration-tests/scripts/bench.sh [SCENARIO] [embedded|production]
#
# SCENARIO is a loadgen scenario (health, submit, status, gate, reserve-hot, reserve-spread; see
# `loadgen --help`). Tunables: DURATION (s, default 10), CONCURRENCY (64),
# CONNECTIONS (4), PGBENCH_CLIENTS (16), PORT (50151), RATE (offered RPC/s for the
# scenario, open loop; default 0 = closed loop; the baseline is always closed loop).
set -euo pipefail
cd "$(dirname "$0")/../.."

SCENARIO=${1:-health}
BACKEND=${2:-embedded}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
CONNECTIONS=${CONNECTIONS:-4}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-16}
PORT=${PORT:-50151}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}

cargo build --release -q -p gd-customs -p integration-tests

workdir=$(mktemp -d)
bench_db="customs_bench_$$"
cleanup() {
  [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS ${bench_db}_pgbench WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -h "$REDIS_HOST" --scan --pattern "bench_$$:*" | xargs -r redis-cli -h "$REDIS_HOST" del >/dev/null
  rm -rf "$workdir"
}
trap cleanup EXIT

export CUSTOMS_SERVER__LISTEN="127.0.0.1:$PORT"
export CUSTOMS_TELEMETRY__FILTER=warn
case "$BACKEND" in
  embedded)
    export CUSTOMS_DATABASE__URL="sqlite://$workdir/bench.db?mode=rwc" ;;
  production)
    psql "$PGURL/postgres" -qc "CREATE DATABASE $bench_db" >/dev/null
    export CUSTOMS_DATABASE__URL="$PGURL/$bench_db"
    export CUSTOMS_SHARED_STORE__BACKEND=redis
    export CUSTOMS_SHARED_STORE__REDIS_URL="redis://$REDIS_HOST:6379"
    export CUSTOMS_SHARED_STORE__KEY_PREFIX="bench_$$" ;;
  *) echo "backend must be embedded or production" >&2; exit 2 ;;
esac

./target/release/gd-customs >"$workdir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done

RATE=${RATE:-0}
loadgen() {
  ./target/release/loadgen --target "http://127.0.0.1:$PORT" --scenario "$1" \
    --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" --duration-secs "$DURATION" --warmup-secs 2 \
    --rate "${2:-0}"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

echo "== baseline: health ($BACKEND)"
baseline=$(loadgen health | tee /dev/stderr | grep '^RESULT')
if [[ "$SCENARIO" != health ]]; then
  echo "== scenario: $SCENARIO ($BACKEND)"
  result=$(loadgen "$SCENARIO" "$RATE" | tee /dev/stderr | grep '^RESULT')
else
  result=$baseline
fi
# Submissions are screened in the background (the outbox hand-off to the risk
# platform): how far screening got by the end of the run, so that the rate at which
# declarations are accepted is not read as the rate at which they are screened.
pipeline=""
if [[ "$SCENARIO" == submit ]]; then
  count="SELECT COUNT(*), COUNT(*) FILTER (WHERE stage <> 'SUBMITTED') FROM declarations"
  case "$BACKEND" in
    embedded) counts=$(command -v sqlite3 >/dev/null && sqlite3 -separator ' ' "$workdir/bench.db" "$count" || true) ;;
    production) counts=$(psql -At -F ' ' "$CUSTOMS_DATABASE__URL" -c "$count" || true) ;;
  esac
  if [[ -n "$counts" ]]; then
    read -r submitted screened <<<"$counts"
    pipeline=$(awk -v n="$submitted" -v s="$screened" -v t="$((DURATION + 2))" 'BEGIN {
      printf "pipeline: %d of %d declarations submitted in the run (warm-up included) were screened by its end: %.0f a second", s, n, s / t }')
  fi
fi
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

echo "== ceiling: pgbench, declaration-shaped transaction, $PGBENCH_CLIENTS clients"
psql "$PGURL/postgres" -qc "CREATE DATABASE ${bench_db}_pgbench" >/dev/null
psql "$PGURL/${bench_db}_pgbench" -q <<'SQL'
CREATE TABLE bench_declaration (declaration_number TEXT PRIMARY KEY, request_id TEXT UNIQUE, enterprise_code TEXT,
  declaring_office TEXT, direction INT, mode INT, total_fen BIGINT, stage TEXT, submitted_at TIMESTAMPTZ);
CREATE TABLE bench_item (declaration_number TEXT, line_no INT, hs_code TEXT, origin TEXT, value_fen BIGINT,
  PRIMARY KEY (declaration_number, line_no));
CREATE TABLE bench_event (id BIGSERIAL PRIMARY KEY, declaration_number TEXT, stage TEXT, house_code TEXT, occurred_at TIMESTAMPTZ);
SQL
pgbench_out=$(pgbench -n -c "$PGBENCH_CLIENTS" -j 2 -T "$DURATION" -f integration-tests/scripts/pgbench-declaration.sql \
  "$PGURL/${bench_db}_pgbench" 2>&1)
pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$pgbench_out" | head -1)
echo "pgbench tps $pg_tps"

echo "== ceiling: redis-benchmark EVAL (a reservation-shaped script)"
eval_out=$(redis-benchmark -h "$REDIS_HOST" -q -n 200000 -c 50 -r 100000 eval \
  "local r = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0'); if r < 1e15 then redis.call('HSET', KEYS[1], 'reserved', tostring(r + 1)); redis.call('HSET', KEYS[1] .. ':r', ARGV[1], 'R:1') end; return 1" \
  1 "bench_$$:{g:__rand_int__}" __rand_int__ 2>&1 | tr '\r' '\n' | grep -E 'requests per second' | tail -1)
redis_rps=$(sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' <<<"$eval_out")
echo "redis EVAL rps $redis_rps"

rps=$(field rps "$result"); base_rps=$(field rps "$baseline")
echo
echo "== summary ($BACKEND, $(nproc) cores)"
echo "$result"
echo "$baseline"
[[ -n "$pipeline" ]] && echo "$pipeline"
awk -v s="$rps" -v b="$base_rps" -v p="$pg_tps" -v r="$redis_rps" -v name="$SCENARIO" 'BEGIN {
  printf "%s rpc/s %.1f | baseline %.1f | pgbench %.1f | redis EVAL %.1f\n", name, s, b, p, r;
  printf "ratio to baseline %.2f | to pgbench %.2f | to redis EVAL %.2f\n", s / b, (p > 0 ? s / p : 0), (r > 0 ? s / r : 0);
}'
