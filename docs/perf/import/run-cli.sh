#!/bin/bash
# run-cli.sh BIN FILE DB LABEL: credgate import FILE into a fresh
# database DB, dropped afterwards. Results in $BS/out/LABEL/summary.
set -u
. "$(dirname "$0")/lib.sh"
BIN=$1 FILE=$2 DB=$3 LABEL=$4
OUT=$BS/out/$LABEL; rm -rf $OUT; mkdir -p $OUT
$PSQL -c "drop database if exists $DB" -c "create database $DB"
echo "load before: $(uptime)" >$OUT/summary
/usr/bin/time -v -o $OUT/time $BIN import --postgres-url "postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" \
  --data-dir $OUT/d $FILE >$OUT/stdout 2>$OUT/stderr
echo "rc=$?" >>$OUT/summary
echo "load after: $(uptime)" >>$OUT/summary
grep -E 'Elapsed|User time|System time|Maximum resident' $OUT/time >>$OUT/summary
$PSQL -d $DB -c "select count(*) from entries" >>$OUT/summary
$PSQL -c "drop database $DB"
cat $OUT/summary
