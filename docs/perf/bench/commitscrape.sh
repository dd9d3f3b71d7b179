#!/bin/bash
# commitscrape.sh SECONDS METRICS-URL: every 200 ms, the wall-clock time (HH:MM:SS.mmm), the server's
# evidence commits that took over 25 ms so far, and its records that waited over 25 ms for their
# commit so far; a line where either grows brackets a slow commit in time.
end=$(( $(date +%s) + $1 ))
while [ "$(date +%s)" -lt $end ]; do
  t=$(date +%T.%3N)
  curl -s "$2" | awk -v t="$t" '
    /^credgate_evidence_commit_seconds_bucket\{le="0.025"\}/ {c25 = $2}
    /^credgate_evidence_commit_seconds_count/ {c = $2}
    /^credgate_evidence_queue_wait_seconds_bucket\{le="0.025"\}/ {q25 = $2}
    /^credgate_evidence_queue_wait_seconds_count/ {q = $2}
    END {print t, c - c25, q - q25}'
  sleep 0.2
done
