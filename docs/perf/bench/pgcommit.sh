#!/bin/bash
# pgcommit.sh DB [TRANSACTIONS]: PostgreSQL's CPU per commit of one check
# record, written as the store writes it (append lock, guard, evidence,
# check_index, tree nodes, head: one pipeline, one Sync), against the same
# statements merged into one and a one-row INSERT commit. DB must carry
# credgate's schema (any database serve has migrated, e.g. one run1.sh
# left; the scripts write rows at indexes far past the log, so use a
# throw-away one). One pgbench client; the CPU is that of every postgres
# process (exited backends included, through the postmaster's children
# times) over the run.
set -eu
DB=$1; N=${2:-3000}
W=$(mktemp -d /tmp/pgcommit.XXXX)
BODY=7b22636865636b5f6964223a22$(printf '61%.0s' $(seq 1 1400))
ARR="ARRAY['chk-' || :n]::text[]"
LOCK="SELECT pg_advisory_xact_lock(1, 2), set_config('credgate.check_rows', 'written', true)"
GUARD="SELECT 1 / (CASE WHEN h.size > 0 AND (SELECT coalesce(max(idx) + 1, 0) FROM evidence) > 0 THEN 1 ELSE 0 END) FROM evidence_tree_head h WHERE h.id = 1"
EV="INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash) SELECT :n + r.ord - 1, r.id, r.kind, r.partner, r.at, r.body, r.salt, r.hash FROM unnest($ARR, ARRAY['check']::text[], ARRAY['client-1']::text[], ARRAY[now()]::timestamptz[], ARRAY['\\x$BODY'::bytea]::bytea[], ARRAY['\\x0102030405060708090a0b0c0d0e0f10'::bytea]::bytea[], ARRAY[sha256(:n::text::bytea)]::bytea[]) WITH ORDINALITY AS r(id, kind, partner, at, body, salt, hash, ord)"
CI="INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at) SELECT r.id, :n + r.off, r.partner, r.subject, r.action, r.outcome, r.region, r.at FROM unnest($ARR, ARRAY[0]::bigint[], ARRAY['client-1']::text[], ARRAY['91110000MA' || (:n % 10000)]::text[], ARRAY['government_procurement']::text[], ARRAY['clear']::text[], ARRAY['']::text[], ARRAY[now()]::timestamptz[]) AS r(id, off, partner, subject, action, outcome, region, at)"
ND="INSERT INTO evidence_nodes (level, idx, hash) SELECT * FROM unnest(ARRAY[0, 1]::smallint[], ARRAY[:n, :n]::bigint[], ARRAY[sha256(:n::text::bytea), sha256(:n::text::bytea)]::bytea[])"
HD="UPDATE evidence_tree_head SET size = size, root = root, border = border WHERE id = 1"
RND='\set n random(100000000, 2000000000)'
printf '%s\n' "$RND" '\startpipeline' 'BEGIN;' "$LOCK;" "$GUARD;" "$EV;" "$CI;" "$ND;" "$HD;" 'COMMIT;' '\endpipeline' > $W/store.sql
printf '%s\n' "$RND" '\startpipeline' 'BEGIN;' "$LOCK;" "$GUARD;" "WITH ev AS ($EV), ci AS ($CI), nd AS ($ND) $HD;" 'COMMIT;' '\endpipeline' > $W/merged.sql
psql -h 127.0.0.1 -U postgres -d "$DB" -qc 'CREATE TABLE IF NOT EXISTS pgcommit_probe (id bigserial PRIMARY KEY, v text)'
printf '%s\n' "INSERT INTO pgcommit_probe (v) VALUES ('x');" > $W/one_row.sql
. "$(dirname "$0")/pgticks.sh"
for round in 1 2; do
  for s in store merged one_row; do
    a=$(pg_ticks)
    lat=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 1 -t $N -f $W/$s.sql "$DB" 2>&1 | awk '/latency average/ {print $4}')
    b=$(pg_ticks)
    echo "round $round $s: latency ${lat} ms, postgres $(( (b - a) * 10000 / N )) us of CPU per commit"
  done
done
psql -h 127.0.0.1 -U postgres -d "$DB" -qc 'DROP TABLE pgcommit_probe'
rm -rf $W
