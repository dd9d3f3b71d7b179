#!/bin/bash
# pgderived.sh BIN [BATCHES] [ROUNDS]: what each part of the rows derived from
# a check costs PostgreSQL, in the database's CPU per check record.
#
# serve (BIN) migrates a fresh database, which is then copied into one
# database per schema variant. Each variant appends BATCHES (default 1000)
# transactions of 100 check records, each record with a 1.4 KB body, 10 000
# subjects, every tenth record applying a list, from one pgbench client, in
# rounds (default 3) with the variants in turn. The CPU is that of every
# postgres process over the run (exited backends included, through the
# postmaster's children times), the walwriter and checkpointer included;
# the records are generated in SQL (one materialized CTE per transaction),
# the same for every variant.
#
#   current          evidence + check_index (its key, check_index_subject,
#                    check_index_partner, the BRIN on time) + check_lists,
#                    as the store writes them (credgate.check_rows set)
#   noderiv          evidence alone: none of the derived rows
#   merged           the check's columns in evidence's own row (subject,
#                    action, outcome, region, lists), indexed by subject
#                    (subject, action, at) and partner (partner, at), BRIN
#                    on time; no check_index, no check_lists
#   merged-nosubject merged without the subject index
#   merged-nopartner merged without the partner index
#   hashed           current with check_index_subject keyed by a 64-bit hash
#                    of the subject and the time (an expression index: the
#                    key is a third of the size; a reader rechecks the text)
#   current-notrig   current without evidence's two AFTER INSERT triggers
#                    (the statement trigger with its transition table, and
#                    the follow-up row trigger's WHEN)
#   noderiv-notrig   noderiv without them
#
# Variants are databases of their own, so each round appends to what the
# earlier rounds left: the indexes grow as a live log's do.
set -eu
BIN=$1; N=${2:-1000}; ROUNDS=${3:-3}
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q)
W=$(mktemp -d /tmp/pgderived.XXXX)
BASE=pgderived_base_$$
cleanup() {
  for d in $BASE ${DBS:-}; do "${PSQL[@]}" -d test -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done
  rm -rf "$W"
}
trap cleanup EXIT

# A migrated database, from serve's own migrations.
"${PSQL[@]}" -d test -c "CREATE DATABASE $BASE"
PORT=$((20000 + RANDOM % 20000))
CREDGATE_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/$BASE?sslmode=disable" \
  "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$W/data" > "$W/serve.log" 2>&1 &
SP=$!
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.1; done
kill $SP; wait $SP 2>/dev/null || true

variants=(${VARIANTS:-current noderiv merged merged-nosubject merged-nopartner hashed})
DBS=""
for v in "${variants[@]}"; do
  d=pgderived_${v//-/_}_$$
  DBS="$DBS $d"
  "${PSQL[@]}" -d test -c "CREATE DATABASE $d TEMPLATE $BASE"
  "${PSQL[@]}" -d $d -c "CREATE SEQUENCE pgderived_batch"
  case $v in
  merged*)
    "${PSQL[@]}" -d $d <<'EOF'
DROP TRIGGER evidence_checks_derived ON evidence;
ALTER TABLE evidence ADD COLUMN subject text, ADD COLUMN action text, ADD COLUMN outcome text,
    ADD COLUMN region text, ADD COLUMN lists text[];
CREATE INDEX evidence_subject ON evidence (subject, action, at) WHERE subject IS NOT NULL;
CREATE INDEX evidence_partner ON evidence (partner, at) WHERE kind = 'check';
CREATE INDEX evidence_time ON evidence USING brin (at);
EOF
    ;;
  esac
  case $v in
  merged-nosubject) "${PSQL[@]}" -d $d -c "DROP INDEX evidence_subject" ;;
  merged-nopartner) "${PSQL[@]}" -d $d -c "DROP INDEX evidence_partner" ;;
  *-notrig) "${PSQL[@]}" -d $d -c "DROP TRIGGER evidence_checks_derived ON evidence" -c "DROP TRIGGER evidence_follow_up ON evidence" ;;
  hashed) "${PSQL[@]}" -d $d -c "DROP INDEX check_index_subject" \
      -c "CREATE INDEX check_index_subject ON check_index (hashtextextended(subject, 0), checked_at)" ;;
  esac
done

BODY=7b22636865636b5f6964223a22$(printf '61%.0s' $(seq 1 1400))
# 100 records: position, a UUID-length id in the log's order, the partner,
# the time, body, salt, hash, and one of 10 000 subjects.
SEL="SELECT (:b::bigint * 100 + g) AS i, lpad((:b::bigint * 100 + g)::text, 36, '0') AS id, 'client-1'::text AS partner,
  now() AS at, '\\x$BODY'::bytea AS body, '\\x0102030405060708090a0b0c0d0e0f10'::bytea AS salt, sha256(g::text::bytea) AS hash,
  '9111000' || lpad(((:b::bigint * 100 + g) * 7919 % 10000)::text, 11, '0') AS subject
  FROM generate_series(0, 99) g"
PRE="SELECT nextval('pgderived_batch') AS b \\gset"
EV="INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash) SELECT i, id, 'check', partner, at, body, salt, hash FROM s"
{
  echo "$PRE"; echo "BEGIN;"; echo "SELECT set_config('credgate.check_rows', 'written', true);"
  echo "WITH s AS MATERIALIZED ($SEL), ev AS ($EV),
    ci AS (INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
           SELECT id, i, partner, subject, 'government_procurement', 'clear', '', at FROM s)
    INSERT INTO check_lists (check_id, list) SELECT id, 'serious_dishonesty' FROM s WHERE i % 10 = 0;"
  echo "COMMIT;"
} > "$W/current.sql"
{
  echo "$PRE"; echo "BEGIN;"; echo "SELECT set_config('credgate.check_rows', 'written', true);"
  echo "WITH s AS MATERIALIZED ($SEL) $EV;"; echo "COMMIT;"
} > "$W/noderiv.sql"
{
  echo "$PRE"; echo "BEGIN;"
  echo "WITH s AS MATERIALIZED ($SEL)
    INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash, subject, action, outcome, region, lists)
    SELECT i, id, 'check', partner, at, body, salt, hash, subject, 'government_procurement', 'clear', '',
           CASE WHEN i % 10 = 0 THEN ARRAY['serious_dishonesty'] END FROM s;"
  echo "COMMIT;"
} > "$W/merged.sql"

. "$(dirname "$0")/pgticks.sh"
echo "# $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg); $N transactions of 100 records per variant and round"
for r in $(seq 1 "$ROUNDS"); do
  for v in "${variants[@]}"; do
    d=pgderived_${v//-/_}_$$
    script=$W/${v%%-*}.sql
    [ "$v" = hashed ] && script=$W/current.sql
    a=$(pg_ticks)
    lat=$(pgbench -h 127.0.0.1 -U postgres -n -c 1 -t "$N" -f "$script" "$d" 2>&1 | awk '/latency average/ {print $4}')
    b=$(pg_ticks)
    printf 'round %d %-17s %6.2f ms a transaction, %3d us of PostgreSQL CPU a record\n' "$r" "$v" "$lat" $(( (b - a) * 10000 / N / 100 ))
  done
done
echo "# $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
