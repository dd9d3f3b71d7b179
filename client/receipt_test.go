package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

func testSigner(t *testing.T) (*evidence.Signer, note.Verifiers) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "credgate.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.NewSigner("credgate.test/log", skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, note.VerifierList(v)
}

// TestSpooledAnswer: a check whose record the replica spooled (the log's
// database could not commit it in time) has no log position yet. Its
// receipt says so (state spooled, no log_index: not position 0, another
// record's) and carries the replica's promise, which verifies.
func TestSpooledAnswer(t *testing.T) {
	t.Parallel()
	f, ts := newFake(t)
	signer, verifiers := testSigner(t)
	f.answer = spooledAnswer(t, signer)
	c, _ := New(ts.URL, WithClientSecret("bank", "s3cret"))
	a, err := c.Check(context.Background(), CheckRequest{Subject: Subject{ID: "91350100M000100Y43"}, Action: "bank_credit"})
	if err != nil {
		t.Fatal(err)
	}
	r := a.Receipt
	if !r.Spooled() || r.State != ReceiptSpooled || r.LogIndex != nil || r.LeafHash != "" || r.Promise == nil || r.RecordHash == "" {
		t.Fatalf("a spooled receipt read as %+v", r)
	}
	v, err := evidence.VerifyPromise(*r.Promise, verifiers)
	if err != nil || v.Position != 3 || v.Replica != "replica-a" || v.Record.ID != a.CheckID || r.Promise.RecordHash != r.RecordHash {
		t.Fatalf("promise %+v: %v", v, err)
	}
	if a.Subject.Kind != "organization" || a.CatalogRevision != "cat-bcb591f317d49f73" || a.Outcome != OutcomeClear {
		t.Fatalf("answer %+v", a)
	}
}

// TestUnverifiableAnswer: an unverifiable answer comes with a nil error;
// its outcome is OutcomeUnverifiable and Unverifiable says why.
func TestUnverifiableAnswer(t *testing.T) {
	t.Parallel()
	f, ts := newFake(t)
	f.answer = []byte(`{"check_id":"c1","partner":"bank","subject":{"id":"91350100M000100Y43","kind":"organization"},
		"action":"bank_credit","outcome":"unverifiable","measures":[],"entries":[],"catalog_revision":"cat-bcb591f317d49f73",
		"data_as_of":"2026-12-07T09:00:00Z","checked_at":"2026-12-07T10:00:00Z","valid_at":"2026-03-05T02:00:00Z",
		"context":{"region":"440300"},
		"unverifiable":{"reason":"source_stale","detail":"not synced for 3h","source":"creditchina"},
		"receipt":{"log_index":0,"record_hash":"64f268fcbf15f3e795ee414ff2668a9f11738ad91f5d065e80d121e3bb5e7863","leaf_hash":"19a2439f6de7e571c58c1df074710c90613af2bd772dff5e124e86de8c2a7f1a"}}`)
	c, _ := New(ts.URL, WithClientSecret("bank", "s3cret"))
	a, err := c.Check(context.Background(), CheckRequest{Subject: Subject{ID: "91350100M000100Y43"}, Action: "bank_credit"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Outcome != OutcomeUnverifiable || a.Unverifiable == nil || a.Unverifiable.Reason != "source_stale" ||
		a.Unverifiable.Source != "creditchina" || a.ValidAt == nil || a.AsOf != nil || a.Context == nil || a.Context.Region != "440300" {
		t.Fatalf("answer %+v", a)
	}
	if a.Receipt.Spooled() || a.Receipt.LogIndex == nil || *a.Receipt.LogIndex != 0 {
		t.Fatalf("receipt at position 0 read as %+v", a.Receipt)
	}
}

// TestCheckBatch: each result is a check (with its verbatim answer) or a
// problem, in request order; a result with neither is not the API's.
func TestCheckBatch(t *testing.T) {
	t.Parallel()
	f, ts := newFake(t)
	signer, _ := testSigner(t)
	spooled := spooledAnswer(t, signer)
	f.batch, _ = json.Marshal(map[string]any{"action": "bank_credit", "results": []any{
		map[string]any{"index": 0, "check": json.RawMessage(spooled)},
		map[string]any{"index": 1, "problem": map[string]any{"type": "urn:credgate:problem:invalid_subject_id",
			"title": "Invalid subject identifier", "status": 400, "code": "invalid_subject_id", "field": "subjects[1].id",
			"reason": "check_character"}},
	}})
	c, _ := New(ts.URL, WithClientSecret("bank", "s3cret"))
	ctx := context.Background()
	b, err := c.CheckBatch(ctx, BatchRequest{Subjects: []Subject{{ID: "91350100M000100Y43"}, {ID: "x"}}, Action: "bank_credit"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Action != "bank_credit" || len(b.Results) != 2 || len(b.Raw) == 0 {
		t.Fatalf("batch %+v", b)
	}
	r0, r1 := b.Results[0], b.Results[1]
	if r0.Index != 0 || r0.Problem != nil || r0.Check == nil || !r0.Check.Receipt.Spooled() || string(r0.Check.Raw) != string(spooled) {
		t.Fatalf("result 0: %+v", r0)
	}
	if r1.Index != 1 || r1.Check != nil || r1.Problem == nil || r1.Problem.Code != "invalid_subject_id" || r1.Problem.Field != "subjects[1].id" {
		t.Fatalf("result 1: %+v", r1)
	}
	f.batch = []byte(`{"action":"bank_credit","results":[{"index":0}]}`)
	if _, err := c.CheckBatch(ctx, BatchRequest{Subjects: []Subject{{ID: "x"}}, Action: "bank_credit"}); !errors.Is(err, ErrResponse) {
		t.Fatalf("a result with neither check nor problem: %v", err)
	}
}
