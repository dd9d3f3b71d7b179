#!/bin/bash
# cpu.sh SECONDS: cores used per command name over the window, plus idle
S=${1:-5}
snap() { for p in /proc/[0-9]*; do read -r l < $p/stat 2>/dev/null || continue; c=${l#*(}; c=${c%%)*}; r=${l##*) }; set -- $r; echo "${p#/proc/} ${c// /_} $((${12}+${13}))"; done; }
a=$(snap); i1=$(awk '/^cpu /{print $5+$6}' /proc/stat); sleep $S; b=$(snap); i2=$(awk '/^cpu /{print $5+$6}' /proc/stat)
join <(echo "$a"|sort) <(echo "$b"|sort) | awk -v s=$S '{d=$5-$3; if(d>0) t[$2]+=d} END{for(k in t) printf "%-20s %.2f\n", k, t[k]/100/s}' | sort -k2 -nr | head -12
echo "idle $(echo "($i2-$i1)/100/$S" | bc -l | cut -c1-4)"
