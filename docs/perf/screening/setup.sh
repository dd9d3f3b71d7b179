#!/bin/bash
# Fresh database, the listed entries imported, a server started, a partner created
# with a quota covering the 1 000 000-subject file (a job costs one unit a subject).
set -euo pipefail
D=/tmp/scr1m
DB=credgate_scr1m_$(date +%s)
echo $DB > $D/db
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB"
URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
rm -rf $D/data
/tmp/credgate-scr import --postgres-url "$URL" --data-dir $D/data $D/entries.csv > $D/import.out 2> $D/import.err
export CREDGATE_ADMIN_CLIENT_ID=admin CREDGATE_ADMIN_CLIENT_SECRET=scr1m-admin-secret-0123456789abcdef
nohup /tmp/credgate-scr serve --addr 127.0.0.1:18931 --data-dir $D/data --postgres-url "$URL" --log-level warn > $D/serve.log 2>&1 &
echo $! > $D/serve.pid
for i in $(seq 100); do curl -sf http://127.0.0.1:18931/healthz >/dev/null && break; sleep 0.2; done
TOK=$(curl -s -u admin:scr1m-admin-secret-0123456789abcdef -d grant_type=client_credentials http://127.0.0.1:18931/v1/oauth/token | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
curl -s -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' -d '{"name":"某商业银行","actions":["bank_credit"],"rate_limit":"2000000-M"}' http://127.0.0.1:18931/v1/admin/partners | python3 -c 'import sys,json;m=json.load(sys.stdin);print(json.dumps({"client_id":m["client_id"],"client_secret":m["client_secret"]}))' > $D/bank.json
cat $D/import.out; grep VmRSS /proc/$(cat $D/serve.pid)/status
