#!/usr/bin/env python3
# summ.py FILE...: one line per bench JSON line: phases (rps, p50/p99/max, the server's own p99 and max bucket and of it the
# evidence wait's p99 and max bucket with records per commit, server us/answered, gen cores, and for an open loop the
# share of sends more than 1 ms late) and ratio
# (with --rounds: each round's phases, the ratio of the means, and the rounds' spread and median); for the overload
# phase, the share of capacity answered, the answers on kept and on new connections (p99), and with --retry-after
# the answers after a retry (p99 from the first send) and the callers that gave up
import json,sys
for f in sys.argv[1:]:
    tag=''
    for line in open(f):
        if line.startswith('# '): tag=line[2:].strip(); continue
        if not line.startswith('{'): continue
        d=json.loads(line); out=[]
        for p in d['phases']:
            s=p.get('server') or {}
            inside=''
            if s.get('p99_le_ms'):
                inside=' (in srv p99<=%g max<=%s' % (s['p99_le_ms'], ('%g' % s['max_le_ms']) if s.get('max_le_ms') else '?')
                e=s.get('evidence') or {}
                if e.get('wait_p99_le_ms'):
                    inside+='; evid p99<=%g max<=%s, %.2f/commit' % (e['wait_p99_le_ms'], ('%g' % e['wait_max_le_ms']) if e.get('wait_max_le_ms') else '?', e.get('records_per_commit',0))
                inside+=')'
            late=''
            if p.get('scheduled'):
                late=' late %.1f%%' % (100.0*p.get('late',0)/p['scheduled'])
            ov=''
            if p.get('capacity_rps'):
                ov=' answered %.0f%% of %.0f/s, arrived %.2fx; kept %d p99 %.0f, new %d p99 %.0f' % (100.0*p['throughput_rps']/p['capacity_rps'],p['capacity_rps'],s.get('arrived_x_capacity',0),p.get('answered_kept_connection',0),p.get('p99_kept_connection_ms',0),p.get('answered_new_connection',0),p.get('p99_new_connection_ms',0))
                if p.get('retry_after_max'):
                    ov+=', after retry %d p99 %.0f, gave up %d, waiting %d' % (p.get('answered_after_retry',0),p.get('p99_after_retry_ms',0),p.get('gave_up',0),p.get('retries_waiting_at_end',0))
                ov+='; rss %.0f->%.0f MB' % (p.get('rss_before_mb',0),p.get('rss_after_mb',0))
            out.append("%s %.0f/s p50 %.1f p99 %.1f max %.1f%s srv %.0fus gen %.2f%s%s" % (p['name'],p['throughput_rps'],p['p50_ms'],p['p99_ms'],p.get('max_ms',0),inside,s.get('cpu_us_per_answered',0),p.get('generator_cores',0),late,ov))
        r=d.get('checks_noop_ratio_pct')
        rr=sorted(d.get('round_ratios_pct') or [])
        rounds=''
        if rr:
            n=len(rr); med=rr[n//2] if n%2 else (rr[n//2-1]+rr[n//2])/2
            rounds=' (%d rounds: %.3f-%.3f, median %.3f)'%(n,rr[0]/100,rr[-1]/100,med/100)
        print(tag,'|',' | '.join(out),('| ratio %.3f'%(r/100))+rounds if r else '')
