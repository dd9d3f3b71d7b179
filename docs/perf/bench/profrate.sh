#!/bin/bash
# profrate.sh BIN PORT OUTPREFIX: rate 2000/s 16 s on PostgreSQL + Redis; 8 s after the start, cpu.sh 6 and a 6 s CPU profile
BIN=$1; PORT=$2; OUT=$3
( sleep 8; "$(dirname "$0")"/cpu.sh 6 > $OUT.cpu ) &
( sleep 8; curl -s -o $OUT.pprof "http://127.0.0.1:$((PORT+1))/debug/pprof/profile?seconds=6" ) &
"$(dirname "$0")"/run1.sh $BIN pg profrate $PORT -- --phases rate --rate 2000 --duration 16s ${SUBJECTS:+--subjects $SUBJECTS} > $OUT.json
wait
