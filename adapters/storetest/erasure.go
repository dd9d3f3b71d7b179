package storetest

import (
	"bytes"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// CheckErasureOnly checks that the database itself refuses every rewrite
// of an evidence record's body or salt except erasure, both emptied
// (docs/EVIDENCE.md): an operator's SQL goes round credgate, so the
// schema's triggers are all that stands between it and a quietly
// rewritten record. update runs, in the store's own dialect and on a
// connection of its own, `UPDATE evidence SET body = <body>, salt = <salt>
// WHERE idx = <idx>` on the store s (fresh and empty).
func CheckErasureOnly(t *testing.T, s service.Store, update func(idx uint64, body, salt []byte) error) {
	t.Helper()
	ctx := t.Context()
	rec := record(t, "erase-me")
	idx := mustAppend(t, s, []evidence.Record{rec})
	intact := func(what string) {
		t.Helper()
		got, err := s.Record(ctx, rec.ID)
		if err != nil {
			t.Fatalf("%s: Record: %v", what, err)
		}
		if !bytes.Equal(got.Body, rec.Body) || !bytes.Equal(got.Salt, rec.Salt) {
			t.Fatalf("%s: the record changed: body %q salt %x", what, got.Body, got.Salt)
		}
	}
	other := []byte(`{"check":"erase-me","subject":"91110000MA00000002"}`)
	for _, c := range []struct {
		what       string
		body, salt []byte
	}{
		{"body rewritten", other, rec.Salt},
		{"salt rewritten", rec.Body, bytes.Repeat([]byte{7}, len(rec.Salt))},
		{"body rewritten, salt emptied", other, []byte{}},
		{"body emptied, salt kept", []byte{}, rec.Salt},
		{"salt emptied, body kept", rec.Body, []byte{}},
	} {
		if err := update(idx, c.body, c.salt); err == nil {
			t.Errorf("%s: the database allowed it", c.what)
		}
		intact(c.what)
	}

	// Erasure: allowed, and it leaves what the leaf commits to.
	if err := update(idx, []byte{}, []byte{}); err != nil {
		t.Fatalf("erasing body and salt: %v", err)
	}
	got, err := s.Record(ctx, rec.ID)
	if err != nil {
		t.Fatalf("erased record: %v", err)
	}
	if len(got.Body) != 0 || len(got.Salt) != 0 || got.Hash != rec.Hash || got.Index != idx {
		t.Fatalf("erased record: %+v, want empty body and salt, hash %x at %d", got, rec.Hash, idx)
	}
	// Erasing again changes nothing and is allowed; filling an erased
	// body back in is a rewrite like any other.
	if err := update(idx, []byte{}, []byte{}); err != nil {
		t.Errorf("erasing an erased record again: %v", err)
	}
	if err := update(idx, rec.Body, rec.Salt); err == nil {
		t.Errorf("an erased body restored: the database allowed it")
	}
}
