package evidence_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
)

// A replica checks the stored log against its keys before it signs: an
// empty log or its own key passes; another key is named; a key given from
// before a rotation passes; another origin and an altered note are refused.
func TestCheckLogKey(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	first := newSigner(t, "first")
	other := newSigner(t, "other")

	// No checkpoint yet: any key, or none, may start.
	for _, vs := range [][]string{nil, {other.VerifierKey()}} {
		var v = verifiersOf(t, vs...)
		if vs == nil {
			v = nil
		}
		if err := evidence.CheckLogKey(ctx, st, testOrigin, v); err != nil {
			t.Fatalf("empty log with keys %v: %v", vs, err)
		}
	}

	if _, err := st.AppendBatch(ctx, []evidence.Record{sealed(t, "a")}); err != nil {
		t.Fatal(err)
	}
	log := evidence.NewLog(st, first)
	if err := log.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := evidence.CheckLogKey(ctx, st, testOrigin, verifiersOf(t, first.VerifierKey())); err != nil {
		t.Fatalf("own key: %v", err)
	}
	// A rotation: the new key with the old one given as previous.
	if err := evidence.CheckLogKey(ctx, st, testOrigin, verifiersOf(t, other.VerifierKey(), first.VerifierKey())); err != nil {
		t.Fatalf("rotation: %v", err)
	}

	wantName := "first+" + strings.Split(first.VerifierKey(), "+")[1]
	for name, vs := range map[string][]string{"other key": {other.VerifierKey()}, "no key": nil} {
		v := verifiersOf(t, vs...)
		if vs == nil {
			v = nil
		}
		err := evidence.CheckLogKey(ctx, st, testOrigin, v)
		var ke *evidence.LogKeyError
		if !errors.Is(err, evidence.ErrLogKey) || !errors.As(err, &ke) || len(ke.SignedBy) != 1 || ke.SignedBy[0] != wantName ||
			!strings.Contains(err.Error(), wantName) || ke.Size != 1 {
			t.Fatalf("%s: %v (%+v), want signed by %s", name, err, ke, wantName)
		}
	}

	err := evidence.CheckLogKey(ctx, st, "credgate.other/evidence", verifiersOf(t, first.VerifierKey()))
	var ke *evidence.LogKeyError
	if !errors.As(err, &ke) || ke.Origin != testOrigin || !strings.Contains(err.Error(), `"credgate.other/evidence"`) {
		t.Fatalf("other origin: %v", err)
	}

	// The right key, an altered text: not "another key", but a forgery.
	cp, _ := st.LatestCheckpoint(ctx)
	altered := newMemStore()
	bad := cp
	bad.Note = []byte(strings.Replace(string(cp.Note), "\n1\n", "\n2\n", 1))
	bad.Size = 2
	if err := altered.AddCheckpoint(ctx, bad); err != nil {
		t.Fatal(err)
	}
	err = evidence.CheckLogKey(ctx, altered, testOrigin, verifiersOf(t, first.VerifierKey()))
	if err == nil || errors.Is(err, evidence.ErrLogKey) || !errors.Is(err, evidence.ErrCheckpointSignature) {
		t.Fatalf("altered checkpoint: %v", err)
	}
}
