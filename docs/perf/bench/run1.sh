#!/bin/bash
# run1.sh BIN pg|sqlite TAG PORT [noadmin] -- <bench args>
# serve --bench-noop on a fresh data dir (pg: fresh database + Redis prefix), run bench, print its JSON line.
set -u
BIN=$1; STORE=$2; TAG=$3; PORT=$4; shift 4
ADMIN=1; if [ "${1:-}" = noadmin ]; then ADMIN=0; shift; fi
[ "${1:-}" = "--" ] && shift
D=$(mktemp -d /tmp/run1.XXXX)
ENVS=()
DB="credgate_run_${TAG}_$$"; DB=${DB,,}; DB=${DB//[^a-z0-9_]/_}
if [ "$STORE" = pg ]; then
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB" >/dev/null
  ENVS=(CREDGATE_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" CREDGATE_REDIS_URL=redis://127.0.0.1:6379/0 CREDGATE_REDIS_PREFIX="run-$DB" CREDGATE_RATE_LIMIT_PREFIX="run-$DB-rl")
fi
ADM=(); MET=()
if [ $ADMIN = 1 ]; then ADM=(--admin-addr 127.0.0.1:$((PORT+1))); MET=(--metrics-url http://127.0.0.1:$((PORT+1))/metrics); fi
env "${ENVS[@]}" $BIN serve --addr 127.0.0.1:$PORT --data-dir $D --bench-noop "${ADM[@]}" > $D/serve.log 2>&1 &
SP=$!
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.1; done
BB=${BENCH_BIN:-$BIN}
L1=$(cut -d' ' -f1 /proc/loadavg)
${BENCH_PREFIX:-} $BB bench --url http://127.0.0.1:$PORT --data-dir $D "${MET[@]}" --json "$@" > $D/bench.out 2>&1
RC=$?
L2=$(cut -d' ' -f1 /proc/loadavg)
kill $SP; wait $SP 2>/dev/null
echo "# $TAG $STORE rc=$RC load $L1 -> $L2"
tail -1 $D/bench.out
[ $RC = 0 ] || { tail -20 $D/bench.out; tail -20 $D/serve.log; }
if [ "$STORE" = pg ]; then
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
  redis-cli --scan --pattern "run-$DB*" | xargs -r redis-cli del >/dev/null
fi
rm -rf $D
