#!/bin/bash
# One measured screening of book.csv through `credgate screen`; server peak RSS from /proc.
set -uo pipefail
D=/tmp/scr1m
PID=$(cat $D/serve.pid)
echo 5 > /proc/$PID/clear_refs
grep -E 'VmRSS|VmHWM' /proc/$PID/status
uptime
rm -f $D/results.ndjson*
/usr/bin/time -v /tmp/credgate-scr screen $D/book.csv --action bank_credit --out $D/results.ndjson \
  --url http://127.0.0.1:18931 --credentials $D/bank.json > $D/screen.out 2> $D/screen.err
echo "exit $?"
uptime
grep -E 'VmRSS|VmHWM' /proc/$PID/status
cat $D/screen.out
grep -E "Elapsed|Maximum resident|Percent of CPU" $D/screen.err
grep -E "^screen|^upload|^results|accepted" $D/screen.err | tail -8
