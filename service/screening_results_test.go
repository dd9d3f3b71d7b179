package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// screenedWorld is a done screening job of lcOrg (restricted for bank
// credit by a safety production listing), lcOrg2 (clear) and a bad id.
type screenedWorld struct {
	sc      *service.Screenings
	job     service.ScreeningJob
	results string // the job's results file
	orig    []byte
}

func newScreenedWorld(t *testing.T) *screenedWorld {
	t.Helper()
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	w.create(safetyEntry(cstAt(2026, 2, 1, 10)))
	dir := t.TempDir()
	sc := service.NewScreenings(w.checker, w.store, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	file := fmt.Sprintf("{\"id\":%q}\n{\"id\":%q}\n{\"id\":\"91350100M000100Y4X\"}\n", lcOrg, lcOrg2)
	j, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	for j.State != service.ScreeningDone {
		if j.State == service.ScreeningFailed {
			t.Fatalf("job failed: %s", j.Error)
		}
		if j, err = sc.Get(ctx, admin, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	sw := &screenedWorld{sc: sc, job: j, results: filepath.Join(dir, j.ID, "results")}
	if sw.orig, err = os.ReadFile(sw.results); err != nil {
		t.Fatal(err)
	}
	return sw
}

// tamper rewrites the results file with edit applied to its line n (from
// 1), keeping its length, as a job's recorded progress counts its bytes.
func (sw *screenedWorld) tamper(t *testing.T, n int, edit func(line []byte) []byte) {
	t.Helper()
	lines := bytes.SplitAfter(sw.orig, []byte("\n"))
	l := edit(bytes.Clone(lines[n-1]))
	if len(l) != len(lines[n-1]) {
		t.Fatalf("edit of line %d changes its length: %s", n, l)
	}
	lines[n-1] = l
	if err := os.WriteFile(sw.results, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serve downloads the job's results both ways: as decoded results and as
// NDJSON.
func (sw *screenedWorld) serve(t *testing.T) ([]service.ScreenedAnswer, error, []byte, error) {
	t.Helper()
	ctx := context.Background()
	var got []service.ScreenedAnswer
	_, err := sw.sc.Results(ctx, admin, sw.job.ID, func(a service.ScreenedAnswer) error {
		got = append(got, a)
		return nil
	})
	var nd bytes.Buffer
	_, nerr := sw.sc.ResultsNDJSON(ctx, admin, sw.job.ID, &nd)
	return got, err, nd.Bytes(), nerr
}

// TestScreeningResultsServeOnlyWhatTheTreeProves: a results file on disk
// whose line says another outcome or subject than its answer, whose
// answer was altered, or whose answer was turned into an error, is not
// served (evidence_corrupt), by Results and by ResultsNDJSON alike;
// before any line of it is written.
func TestScreeningResultsServeOnlyWhatTheTreeProves(t *testing.T) {
	sw := newScreenedWorld(t)
	got, err, nd, nerr := sw.serve(t)
	if err != nil || nerr != nil || len(got) != 3 || bytes.Count(nd, []byte("\n")) != 3 {
		t.Fatalf("untampered: %d results, %v; %d NDJSON lines, %v", len(got), err, bytes.Count(nd, []byte("\n")), nerr)
	}
	if got[0].SubjectID != lcOrg || got[0].Outcome != "restrict" || got[1].Outcome != "clear" || got[2].Error == nil {
		t.Fatalf("untampered results: %+v", got)
	}
	if !bytes.Contains(sw.orig, []byte(`"outcome":"restrict",`)) {
		t.Fatalf("the restricted line is not as expected: %s", sw.orig)
	}
	// first: line 1 is itself wrong, so nothing is written; an answer made
	// an error is found at the next answer, whose leaf is then out of place.
	cases := map[string]struct {
		line  int
		first bool
		edit  func([]byte) []byte
	}{
		"outcome field": {1, true, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"outcome":"restrict",`), []byte(`"outcome":"clear"   ,`), 1)
		}},
		"subject field": {2, false, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"subject_id":"`+lcOrg2+`"`), []byte(`"subject_id":"`+lcOrg+`"`), 1)
		}},
		"answer": {1, true, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"outcome":"restrict","measures"`), []byte(`"outcome":"clear"   ,"measures"`), 1)
		}},
		"answer made an error": {1, false, func(l []byte) []byte {
			e := fmt.Appendf(nil, `{"line":1,"subject_id":%q,"error":{"code":"invalid_subject_id","detail":"`, lcOrg)
			pad := len(l) - len(e) - len("\"}}\n")
			return append(append(e, bytes.Repeat([]byte("x"), pad)...), "\"}}\n"...)
		}},
		"line renumbered": {3, false, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`{"line":3,`), []byte(`{"line":4,`), 1)
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			sw.tamper(t, c.line, c.edit)
			_, err, nd, nerr := sw.serve(t)
			for _, e := range []error{err, nerr} {
				if !errors.Is(e, service.ErrScreeningCorrupt) || !errors.Is(e, evidence.ErrTreeCorrupt) {
					t.Errorf("served: %v, want ErrScreeningCorrupt", e)
				}
			}
			if c.first && len(nd) != 0 {
				t.Errorf("NDJSON written before the first line was checked: %s", nd)
			}
		})
	}
	// The answers untouched, a node of the job's stored tree altered: the
	// proofs served from it would not verify, and the results stop where
	// the rebuilt tree completes that node.
	t.Run("tree node", func(t *testing.T) {
		if err := os.WriteFile(sw.results, sw.orig, 0o600); err != nil {
			t.Fatal(err)
		}
		level1 := filepath.Join(filepath.Dir(sw.results), "tree", "level1")
		b, err := os.ReadFile(level1)
		if err != nil || len(b) < 32 {
			t.Fatalf("level 1 of the tree: %d bytes, %v", len(b), err)
		}
		b[0] ^= 1
		if err := os.WriteFile(level1, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err, _, nerr := sw.serve(t)
		for _, e := range []error{err, nerr} {
			if !errors.Is(e, service.ErrScreeningCorrupt) {
				t.Errorf("served: %v, want ErrScreeningCorrupt", e)
			}
		}
	})
}
