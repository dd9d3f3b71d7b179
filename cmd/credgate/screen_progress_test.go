package main

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// A CSV download's header is a line, not a subject: the progress of 3
// subjects' results ends at 3 of 3 (100%), not 4 of 3 (133%).
func TestScreenProgressCountsSubjects(t *testing.T) {
	for _, tc := range []struct {
		header int64
		body   string
	}{
		{1, "subject_id,outcome\nA,clear\nB,clear\nC,restrict\n"},
		{0, "{}\n{}\n{}\n"},
	} {
		var report bytes.Buffer
		p := newProgress(&report, 3, "results", "subjects")
		lw := &lineCounter{w: bufio.NewWriter(io.Discard), p: p, header: tc.header}
		for line := range strings.Lines(tc.body) {
			if _, err := lw.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		p.done()
		if !strings.Contains(report.String(), "results: 3 subjects of 3 (100%)") || lw.lines != 3+tc.header {
			t.Errorf("header %d: %d lines, progress %q", tc.header, lw.lines, report.String())
		}
	}
}
