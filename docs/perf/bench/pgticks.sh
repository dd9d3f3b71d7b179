# pgticks.sh, sourced by pgcommit.sh and pgderived.sh: pg_ticks prints the
# CPU time, in clock ticks, of every postgres process so far (user and
# system, with the times of exited children the postmaster has reaped, so
# backends that ended count too).
pg_ticks() {
  for f in /proc/[0-9]*/stat; do
    s=$(cat "$f" 2>/dev/null) || continue
    case "$s" in *"(postgres)"*) echo "$s" | awk '{ $0=substr($0, index($0,")")+2); print $12+$13+$14+$15 }';; esac
  done | awk '{t+=$1} END {print t}'
}
