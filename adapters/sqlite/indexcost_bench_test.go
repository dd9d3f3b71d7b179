package sqlite

import (
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// BenchmarkCommitDerivedIndexes measures what check_index's secondary
// indexes cost the evidence commit: commits of 64 checks on a log of
// 64 000 checks over 10 000 subjects (as credgate bench's), with every
// index (all) and with some dropped. Besides ns/op (a commit) it reports
// the CPU the process spent during the commits per check (user and system,
// the checkpointer's when it ran meanwhile) and the WAL frames per commit. The
// difference between variants is the price of the dropped indexes; their
// queries (coverage, statistics, overdue feedback) are not run.
func BenchmarkCommitDerivedIndexes(b *testing.B) {
	const perCommit, history, subjects = 64, 64_000, 10_000
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, v := range []struct {
		name string
		drop []string
	}{
		{"all", nil},
		{"no_time", []string{"check_index_time"}},
		{"subject_only", []string{"check_index_time", "check_index_action", "check_index_partner"}},
		{"none", []string{"check_index_time", "check_index_action", "check_index_partner", "check_index_subject"}},
	} {
		b.Run(v.name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(b.Context(), dir)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for _, ix := range v.drop {
				if _, err := s.w.ExecContext(b.Context(), "DROP INDEX "+ix); err != nil {
					b.Fatal(err)
				}
			}
			n := 0
			commit := func() {
				recs := make([]evidence.Record, perCommit)
				for i := range recs {
					recs[i] = BenchCheckRecord(b, n, sizeSubject(n*7919%subjects), at.Add(time.Duration(n)*time.Millisecond))
					n++
				}
				if _, err := s.AppendBatch(b.Context(), recs); err != nil {
					b.Fatal(err)
				}
			}
			for n < history {
				commit()
			}
			var cpu time.Duration
			var frames uint32
			commits := 0
			for b.Loop() {
				f0, salt0 := walMark(b, dir)
				c0 := testenv.ProcessCPU(b)
				commit()
				cpu += testenv.ProcessCPU(b) - c0
				f1, salt1 := walMark(b, dir)
				frames += walFramesSince(f0, salt0, f1, salt1)
				commits++
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(commits*perCommit), "cpu-µs/check")
			b.ReportMetric(float64(frames)/float64(commits), "frames/commit")
		})
	}
}
