package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// pgRefusal is a database error with a SQLSTATE, as pgconn.PgError: what
// PostgreSQL answered a record body holding \u0000 (22P05).
type pgRefusal struct{}

func (pgRefusal) Error() string    { return "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)" }
func (pgRefusal) SQLState() string { return "22P05" }

// refusingStore is the SQLite store, away while down is set, whose evidence
// commits are refused, as PostgreSQL refused them, whenever a batch holds a
// record with "poison" in its body.
type refusingStore struct {
	*sqlite.Store
	down atomic.Bool
}

func (s *refusingStore) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	if s.down.Load() {
		return 0, errDown
	}
	for _, r := range recs {
		if bytes.Contains(r.Body, []byte("poison")) {
			return 0, fmt.Errorf("append evidence: %w", pgRefusal{})
		}
	}
	return s.Store.AppendBatch(ctx, recs)
}

// TestSpoolSetsAsideARefusedRecord: a spooled record the log's database
// refuses on its own is set aside, durably, in the spool's quarantine
// directory, reported in the spool's status and logged at ERROR without
// its body; the records around it are integrated in spool order and the
// spool empties. Before, the whole chunk was retried forever (pending, as
// if the database were away), and the replica stayed ready.
func TestSpoolSetsAsideARefusedRecord(t *testing.T) {
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sink := &refusingStore{Store: st}
	app := evidence.NewAppender(sink)
	t.Cleanup(app.Close)
	dir := t.TempDir()
	sp, err := evidence.OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	var logs testenv.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	sl := service.NewSpoolingLog(app, sp, testenv.Signer(t, "credgate.test/evidence"), st,
		service.WithSpoolBound(time.Second), service.WithSpoolLogger(logger))

	const subject = "91110000MA0000141X"
	rec := func(id, body string) evidence.Record {
		return evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "p", At: time.Now(), Body: []byte(body)}
	}
	sink.down.Store(true)
	var spooled []evidence.Record
	for _, r := range []evidence.Record{
		rec("c1", `{"check_id":"c1"}`),
		rec("c-poison", `{"check_id":"c-poison","subject":{"id":"`+subject+`"},"reference":"poison\u0000"}`),
		rec("c2", `{"check_id":"c2"}`),
		rec("c3", `{"check_id":"c3"}`),
	} {
		out, err := sl.Append(t.Context(), r)
		if err != nil || out[0].Promise == nil {
			t.Fatalf("spool %s: %v", r.ID, err)
		}
		spooled = append(spooled, out[0])
	}
	sink.down.Store(false)

	n, err := sl.IntegrateOnce(t.Context())
	if err != nil || n != 4 {
		t.Fatalf("integration: %d, %v", n, err)
	}
	var last uint64
	for i, id := range []string{"c1", "c2", "c3"} {
		r, err := st.Record(t.Context(), id)
		if err != nil {
			t.Fatalf("%s not integrated: %v", id, err)
		}
		if i > 0 && r.Index <= last {
			t.Fatalf("%s at %d after %d: not in spool order", id, r.Index, last)
		}
		last = r.Index
	}
	if _, err := st.Record(t.Context(), "c-poison"); !errors.Is(err, evidence.ErrNotFound) {
		t.Fatalf("the refused record: %v", err)
	}
	status := sl.SpoolStatus()
	if status.Pending != 0 || status.State != service.SpoolEmpty || status.Quarantined != 1 {
		t.Fatalf("status %+v", status)
	}
	if err := sl.Ready(t.Context()); err != nil {
		t.Fatalf("ready: %v", err)
	}
	b, err := json.Marshal(status)
	if err != nil || !strings.Contains(string(b), `"quarantined":1`) {
		t.Fatalf("/readyz's spool section: %s, %v", b, err)
	}

	// Kept whole: the spool entry, with its hash and salt, and why.
	raw, err := os.ReadFile(filepath.Join(dir, service.SpoolQuarantineDir, "00000000000000000002.json"))
	if err != nil {
		t.Fatal(err)
	}
	var kept struct {
		Position uint64 `json:"position"`
		ID       string `json:"id"`
		Body     []byte `json:"body"`
		Salt     []byte `json:"salt"`
		Refused  string `json:"refused"`
	}
	if err := json.Unmarshal(raw, &kept); err != nil {
		t.Fatal(err)
	}
	if kept.Position != 2 || kept.ID != "c-poison" || evidence.RecordHash(kept.Salt, kept.Body) != spooled[1].Hash ||
		!strings.Contains(kept.Refused, "22P05") {
		t.Fatalf("quarantined %+v", kept)
	}
	if fi, err := os.Stat(filepath.Join(dir, service.SpoolQuarantineDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("quarantine directory: %v, %v", fi, err)
	}

	out := logs.String()
	if !strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, `"record":"c-poison"`) {
		t.Fatalf("not logged at ERROR: %s", out)
	}
	if strings.Contains(out, subject) || strings.Contains(out, "poison\\u0000") {
		t.Fatalf("the log holds the record's body: %s", out)
	}

	// A restarted integrator still reports it.
	again := service.NewSpoolingLog(app, sp, nil, st)
	if q := again.SpoolStatus().Quarantined; q != 1 {
		t.Fatalf("after a restart: %d quarantined", q)
	}
}

// TestRefusedCheckNotSpooled: a check whose own record the database
// refuses is not spooled (the spool could never integrate it, and its
// promise would not be kept): its caller gets the refusal.
func TestRefusedCheckNotSpooled(t *testing.T) {
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	app := evidence.NewAppender(&refusingStore{Store: st})
	t.Cleanup(app.Close)
	sp, err := evidence.OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	sl := service.NewSpoolingLog(app, sp, testenv.Signer(t, "credgate.test/evidence"), st)
	r := evidence.Record{ID: "c-poison", Kind: evidence.KindCheck, Partner: "p", At: time.Now(), Body: []byte(`{"reference":"poison"}`)}
	if _, err := sl.Append(t.Context(), r); !errors.Is(err, evidence.ErrRefused) {
		t.Fatalf("append: %v", err)
	}
	if p := sp.Stats().Pending; p != 0 {
		t.Fatalf("%d spooled", p)
	}
}

// TestSpoolWithoutDirectoryStuckAtARefusedRecord: a spool with nowhere to
// set a refused record aside does not drop it: the integration stops
// there, stuck, and the replica is not ready.
func TestSpoolWithoutDirectoryStuckAtARefusedRecord(t *testing.T) {
	st, err := sqlite.Open(t.Context(), sqlitetest.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sink := &refusingStore{Store: st}
	app := evidence.NewAppender(sink)
	t.Cleanup(app.Close)
	sp, err := evidence.OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	sl := service.NewSpoolingLog(app, noDir{sp}, testenv.Signer(t, "credgate.test/evidence"), st)
	sink.down.Store(true)
	r := evidence.Record{ID: "c-poison", Kind: evidence.KindCheck, Partner: "p", At: time.Now(), Body: []byte(`{"reference":"poison"}`)}
	if _, err := sl.Append(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	sink.down.Store(false)
	if _, err := sl.IntegrateOnce(t.Context()); !errors.Is(err, service.ErrSpoolRecordRefused) {
		t.Fatalf("integration: %v", err)
	}
	if s := sl.SpoolStatus(); s.State != service.SpoolStuck || s.Pending != 1 {
		t.Fatalf("status %+v", s)
	}
}

// noDir is a spool that does not say where it is.
type noDir struct{ sp *evidence.Spool }

func (n noDir) Append(ctx context.Context, recs ...evidence.Record) ([]evidence.SpoolEntry, error) {
	return n.sp.Append(ctx, recs...)
}
func (n noDir) Pending(k int) ([]evidence.SpoolEntry, error) { return n.sp.Pending(k) }
func (n noDir) MarkIntegrated(pos uint64) error              { return n.sp.MarkIntegrated(pos) }
func (n noDir) Stats() evidence.SpoolStats                   { return n.sp.Stats() }
