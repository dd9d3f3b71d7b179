#!/bin/bash
# run-http.sh BIN FILE DB LABEL: serve on a fresh database DB, then
# POST FILE to /v1/admin/entries:import with curl -T; the database is
# dropped afterwards. SAMPLE=1 samples the database's statements.
# Results in $BS/out/LABEL/summary.
set -u
. "$(dirname "$0")/lib.sh"
BIN=$1 FILE=$2 DB=$3 LABEL=$4
OUT=$BS/out/$LABEL; rm -rf $OUT; mkdir -p $OUT
$PSQL -c "drop database if exists $DB" -c "create database $DB"
P=$(freeport); A=$(freeport)
$BIN serve --postgres-url "postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" --data-dir $OUT/d \
  --addr 127.0.0.1:$P --admin-addr 127.0.0.1:$A --log-level warn >$OUT/serve.out 2>$OUT/serve.err & SRV=$!
SQ=
trap 'kill $SRV $SQ 2>/dev/null' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$A/readyz >/dev/null && break; sleep 0.2; done
CID=$(jq -r .client_id $OUT/d/admin-credentials.json); CS=$(jq -r .client_secret $OUT/d/admin-credentials.json)
TOKEN=$(curl -sS -u "$CID:$CS" -d grant_type=client_credentials http://127.0.0.1:$P/v1/oauth/token | jq -r .access_token)
sleep 1
echo "load before: $(uptime)" >$OUT/summary
T0=$(ticks $SRV)
if [ -n "${SAMPLE:-}" ]; then sample_queries $DB $OUT/q & SQ=$!; fi
S=$(date +%s.%N)
/usr/bin/time -v -o $OUT/time timeout ${CURL_TIMEOUT:-550} curl -s -S -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: text/csv' -X POST -T $FILE http://127.0.0.1:$P/v1/admin/entries:import >$OUT/answer 2>$OUT/curl.err
echo "rc=$?" >>$OUT/summary
E=$(date +%s.%N)
T1=$(ticks $SRV)
[ -n "$SQ" ] && kill $SQ
echo "load after: $(uptime)" >>$OUT/summary
echo "wall $(echo "$E - $S" | bc) s; server cpu $((T1-T0)) ticks; server $(grep VmHWM /proc/$SRV/status)" >>$OUT/summary
head -c 300 $OUT/answer >>$OUT/summary; echo >>$OUT/summary
kill $SRV; for i in $(seq 50); do kill -0 $SRV 2>/dev/null || break; sleep 0.2; done; kill -9 $SRV 2>/dev/null
$PSQL -c "drop database $DB"
cat $OUT/summary
