#!/bin/bash
# prof.sh BIN pg|sqlite PORT OUTPREFIX: saturate 14 s at 64 workers after a 2 s warm-up; 7 s after the start, cpu.sh 6 and a 6 s CPU profile
BIN=$1; STORE=$2; PORT=$3; OUT=$4
( sleep 7; "$(dirname "$0")"/cpu.sh 6 > $OUT.cpu ) &
( sleep 7; curl -s -o $OUT.pprof "http://127.0.0.1:$((PORT+1))/debug/pprof/profile?seconds=6" ) &
"$(dirname "$0")"/run1.sh $BIN $STORE prof $PORT -- --phases saturate --duration 14s --concurrency 64 > $OUT.json
wait
