#!/bin/bash
# One 10 000 000-line import over HTTP on the final build.
SAMPLE=1 CURL_TIMEOUT=540 "$(dirname "$0")/run-http.sh" ${BS:-/tmp/bs}/credgate.after ${BS:-/tmp/bs}/e10m.csv bs_imp h10m_after
