#!/bin/bash
# The before and after builds alternated: 1 000 000 lines over HTTP and
# by the command line, twice each, then 3 000 000 lines over HTTP.
D=$(dirname "$0"); BS=${BS:-/tmp/bs}
B=$BS/credgate.before A=$BS/credgate.after F=$BS/e1m.csv
$D/run-http.sh $B $F bs_imp h1_before; $D/run-http.sh $A $F bs_imp h1_after
$D/run-cli.sh $B $F bs_imp c1_before;  $D/run-cli.sh $A $F bs_imp c1_after
$D/run-http.sh $A $F bs_imp h2_after;  $D/run-http.sh $B $F bs_imp h2_before
$D/run-cli.sh $A $F bs_imp c2_after;   $D/run-cli.sh $B $F bs_imp c2_before
SAMPLE=1 $D/run-http.sh $B $BS/e3m.csv bs_imp h3m_before
SAMPLE=1 $D/run-http.sh $A $BS/e3m.csv bs_imp h3m_after
