# Helpers of the bulk import runs (docs/PERFORMANCE.md, "Bulk import").
BS=${BS:-/tmp/bs}
PSQL="psql -h 127.0.0.1 -U postgres -d test -qAt"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# ticks PID: CPU time (user + system) of a process, in 1/100 s.
ticks() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
# sample_queries DB FILE: once a second, the non-idle statements on DB
# (time, pid, state, wait event, seconds running, the statement's start).
sample_queries() { while :; do $PSQL -c "select to_char(now(),'HH24:MI:SS.MS')||' '||pid||' '||coalesce(state,'-')||' '||coalesce(wait_event,'-')||' '||round(extract(epoch from now()-query_start)::numeric,2)||' '||left(regexp_replace(query,'\s+',' ','g'),70) from pg_stat_activity where datname='$1' and backend_type='client backend' and state<>'idle'" >>"$2" 2>/dev/null; sleep 1; done; }
