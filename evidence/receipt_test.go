package evidence_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

const testOrigin = "credgate.test/evidence"

func newSigner(t testing.TB, name string) *evidence.Signer {
	t.Helper()
	skey, err := evidence.GenerateSignerKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.NewSigner(testOrigin, skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifiersOf(t testing.TB, keys ...string) note.Verifiers {
	t.Helper()
	vs, err := evidence.Verifiers(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestCheckpointSignOpen(t *testing.T) {
	t.Parallel()
	s := newSigner(t, "credgate.test")
	root := evidence.EmptyRoot()
	root[0] = 7
	sc, err := s.Sign(42, root)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s\n42\n%s\n\n— credgate.test ", testOrigin, base64.StdEncoding.EncodeToString(root[:]))
	if !strings.HasPrefix(string(sc.Note), want) {
		t.Fatalf("note is not a C2SP checkpoint:\n%s", sc.Note)
	}
	got, err := evidence.OpenCheckpoint(sc.Note, verifiersOf(t, s.VerifierKey()), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 42 || got.Root != root || got.Origin != testOrigin {
		t.Fatalf("opened %+v", got.Checkpoint)
	}

	other := newSigner(t, "credgate.test")
	if _, err := evidence.OpenCheckpoint(sc.Note, verifiersOf(t, other.VerifierKey()), ""); !errors.Is(err, evidence.ErrCheckpointSignature) ||
		!strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("other key: %v", err)
	}
	// Same key name and hash, forged text: the signature fails.
	forged := bytes.Replace(sc.Note, []byte("\n42\n"), []byte("\n43\n"), 1)
	if _, err := evidence.OpenCheckpoint(forged, verifiersOf(t, s.VerifierKey()), ""); !errors.Is(err, evidence.ErrCheckpointSignature) ||
		!strings.Contains(err.Error(), "altered or forged") {
		t.Fatalf("forged: %v", err)
	}
	if _, err := evidence.OpenCheckpoint(sc.Note, verifiersOf(t, s.VerifierKey()), "elsewhere"); !errors.Is(err, evidence.ErrCheckpointFormat) {
		t.Fatalf("origin mismatch: %v", err)
	}
	if _, err := evidence.OpenCheckpoint([]byte("not a note"), verifiersOf(t, s.VerifierKey()), ""); !errors.Is(err, evidence.ErrCheckpointFormat) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestParseCheckpointStrict(t *testing.T) {
	t.Parallel()
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	good := testOrigin + "\n5\n" + root + "\n"
	if c, err := evidence.ParseCheckpoint([]byte(good)); err != nil || c.Size != 5 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := evidence.ParseCheckpoint([]byte(good + "extension line\n")); err != nil {
		t.Fatalf("extension lines: %v", err)
	}
	for name, text := range map[string]string{
		"two lines":      testOrigin + "\n5\n",
		"leading zero":   testOrigin + "\n05\n" + root + "\n",
		"negative":       testOrigin + "\n-5\n" + root + "\n",
		"short hash":     testOrigin + "\n5\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n",
		"empty origin":   "\n5\n" + root + "\n",
		"spaced origin":  " o\n5\n" + root + "\n",
		"unpadded hash":  testOrigin + "\n5\n" + strings.TrimRight(root, "=") + "\n",
		"no final break": testOrigin + "\n5\n" + root,
	} {
		if _, err := evidence.ParseCheckpoint([]byte(text)); !errors.Is(err, evidence.ErrCheckpointFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSignerKeyErrorsHideTheKey(t *testing.T) {
	t.Parallel()
	skey, _ := evidence.GenerateSignerKey("k")
	broken := skey[:len(skey)-4] + "AAAA"
	_, err := evidence.NewSigner(testOrigin, broken)
	if !errors.Is(err, evidence.ErrInvalidKey) {
		t.Fatalf("broken key: %v", err)
	}
	if strings.Contains(err.Error(), broken[20:]) {
		t.Fatalf("the error shows the secret key: %v", err)
	}
	if _, err := evidence.NewSigner("bad\norigin", skey); err == nil {
		t.Fatal("origin with a newline accepted")
	}
}

// logWith returns a Log over a memStore holding n records.
func logWith(t *testing.T, n int) (*evidence.Log, *memStore, *evidence.Signer, []evidence.Record) {
	t.Helper()
	m := newMemStore()
	s := newSigner(t, "credgate.test")
	l := evidence.NewLog(m, s, evidence.WithMinCheckpointGap(0))
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var recs []evidence.Record
	for i := range n {
		recs = append(recs, sealed(t, fmt.Sprintf("chk-%d", i)))
	}
	if n > 0 {
		if _, err := m.AppendBatch(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range recs {
		recs[i], _ = m.Record(context.Background(), recs[i].ID)
	}
	return l, m, s, recs
}

func TestReceiptVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, m, s, recs := logWith(t, 11)
	vs := verifiersOf(t, s.VerifierKey())
	for _, rec := range recs {
		r, err := l.Receipt(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(r)
		parsed, err := evidence.ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		v, err := evidence.VerifyReceipt(parsed, vs)
		if err != nil {
			t.Fatalf("receipt of %d: %v", rec.Index, err)
		}
		if v.Record.ID != rec.ID || v.Checkpoint.Size != 11 || !bytes.Equal(v.Record.Body, rec.Body) {
			t.Fatalf("verified %+v", v)
		}
	}
	// The first receipt signed one checkpoint on demand (Start had signed
	// the empty tree); the rest reused it.
	if len(m.cps) != 2 || m.cps[1].Size != 11 {
		t.Fatalf("checkpoints %d, last of size %d", len(m.cps), m.cps[len(m.cps)-1].Size)
	}
}

// TestReceiptTampering changes each part of a receipt and expects the
// precise failure.
func TestReceiptTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _, s, recs := logWith(t, 6)
	good, err := l.Receipt(ctx, recs[3])
	if err != nil {
		t.Fatal(err)
	}
	other, _ := l.Receipt(ctx, recs[4])
	vs := verifiersOf(t, s.VerifierKey())
	flip := func(b64 string) string {
		b, _ := base64.StdEncoding.DecodeString(b64)
		b[len(b)/2] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	forger := newSigner(t, "credgate.test")
	forged, _ := forger.Sign(good.TreeSize, [32]byte{1})
	for _, tc := range []struct {
		name   string
		mutate func(r *evidence.Receipt)
		want   error
		says   string
	}{
		{"one byte of the body", func(r *evidence.Receipt) { r.Record.Body = flip(r.Record.Body) }, evidence.ErrRecordHash, "body or salt was altered"},
		{"the salt", func(r *evidence.Receipt) { r.Record.Salt = flip(r.Record.Salt) }, evidence.ErrRecordHash, "body or salt was altered"},
		{"the partner", func(r *evidence.Receipt) { r.Record.Partner = "someone-else" }, evidence.ErrLeafHash, "was altered"},
		{"the time", func(r *evidence.Receipt) { r.Record.At = r.Record.At.Add(time.Second) }, evidence.ErrLeafHash, "was altered"},
		{"the index (reordered)", func(r *evidence.Receipt) { r.LeafIndex = 4 }, evidence.ErrInclusion, "is not record 4"},
		{"another record's body and hash", func(r *evidence.Receipt) {
			r.Record, r.RecordHash = other.Record, other.RecordHash
		}, evidence.ErrLeafHash, "was altered"},
		{"a proof hash", func(r *evidence.Receipt) { r.InclusionProof[0] = flip(r.InclusionProof[0]) }, evidence.ErrInclusion, "is not record 3"},
		{"a shorter proof", func(r *evidence.Receipt) { r.InclusionProof = r.InclusionProof[1:] }, evidence.ErrInclusion, "wrong proof size"},
		{"the checkpoint text", func(r *evidence.Receipt) {
			r.Checkpoint = strings.Replace(r.Checkpoint, "\n6\n", "\n7\n", 1)
		}, evidence.ErrCheckpointSignature, "altered or forged"},
		{"the checkpoint, by another key", func(r *evidence.Receipt) { r.Checkpoint = string(forged.Note) }, evidence.ErrCheckpointSignature, "not trusted"},
		{"the tree size", func(r *evidence.Receipt) { r.TreeSize = 9 }, evidence.ErrReceiptFormat, "tree_size 9"},
		{"erased body", func(r *evidence.Receipt) { r.Record.Body, r.Record.Salt = "", "" }, evidence.ErrRecordErased, "in the signed log of 6 records"},
		// An erased record proves its place like any other: a forged
		// proof, index or checkpoint still fails as such.
		{"erased, a proof hash", func(r *evidence.Receipt) {
			r.Record.Body, r.Record.Salt = "", ""
			r.InclusionProof[0] = flip(r.InclusionProof[0])
		}, evidence.ErrInclusion, "is not record 3"},
		{"erased, the index", func(r *evidence.Receipt) { r.Record.Body, r.Record.Salt = "", ""; r.LeafIndex = 4 }, evidence.ErrInclusion, "is not record 4"},
		{"erased, the record hash", func(r *evidence.Receipt) {
			r.Record.Body, r.Record.Salt = "", ""
			r.RecordHash = other.RecordHash
		}, evidence.ErrLeafHash, "was altered"},
		{"erased, another key's checkpoint", func(r *evidence.Receipt) {
			r.Record.Body, r.Record.Salt = "", ""
			r.Checkpoint = string(forged.Note)
		}, evidence.ErrCheckpointSignature, "not trusted"},
		{"bad base64", func(r *evidence.Receipt) { r.Record.Body = "%%%" }, evidence.ErrReceiptFormat, "record.body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			r.InclusionProof = append([]string(nil), good.InclusionProof...)
			tc.mutate(&r)
			_, err := evidence.VerifyReceipt(r, vs)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
	if _, err := evidence.VerifyReceipt(good, vs); err != nil {
		t.Fatalf("untouched receipt: %v", err)
	}
}

func TestParseReceiptStrict(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"not json":       "receipt",
		"unknown field":  `{"format":"credgate-receipt/v1","extra":1}`,
		"wrong format":   `{"format":"credgate-receipt/v0"}`,
		"trailing value": `{"format":"credgate-receipt/v1"} {}`,
	} {
		if _, err := evidence.ParseReceipt([]byte(raw)); !errors.Is(err, evidence.ErrReceiptFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	big := bytes.Repeat([]byte(" "), evidence.MaxReceiptSize+1)
	if _, err := evidence.ParseReceipt(big); !errors.Is(err, evidence.ErrReceiptFormat) {
		t.Errorf("oversized: %v", err)
	}
}

// TestCoveringCoalesces asks for many receipts at once for records no
// checkpoint covers: they share a few checkpoints, and every one verifies.
func TestCoveringCoalesces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemStore()
	s := newSigner(t, "credgate.test")
	l := evidence.NewLog(m, s, evidence.WithMinCheckpointGap(50*time.Millisecond))
	app := evidence.NewAppender(m)
	defer app.Close()
	vs := verifiersOf(t, s.VerifierKey())
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			recs, err := app.Append(ctx, sealed(t, fmt.Sprintf("c%d", i)))
			if err != nil {
				errs <- err
				return
			}
			r, err := l.Receipt(ctx, recs[0])
			if err != nil {
				errs <- err
				return
			}
			if _, err := evidence.VerifyReceipt(r, vs); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(m.cps) > 32 {
		t.Fatalf("%d checkpoints for 64 receipts: on-demand signing does not coalesce", len(m.cps))
	}
	keys, _ := l.Keys(ctx)
	if len(keys) != 1 || !keys[0].Current || keys[0].Key != s.VerifierKey() {
		t.Fatalf("keys %+v", keys)
	}
}

func TestRunCheckpointsWhileGrowing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newMemStore()
	s := newSigner(t, "credgate.test")
	l := evidence.NewLog(m, s, evidence.WithCheckpointInterval(5*time.Millisecond))
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	if _, err := m.AppendBatch(ctx, []evidence.Record{sealed(t, "a"), sealed(t, "b")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cp, err := m.LatestCheckpoint(ctx)
		if err == nil && cp.Size == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run signed no checkpoint of the grown log")
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := m.checkpointCount()
	time.Sleep(30 * time.Millisecond)
	if more := m.checkpointCount() - n; more != 0 {
		t.Fatalf("Run signed %d more checkpoints while the log did not grow", more)
	}
	cancel()
	<-done
}

func TestAuditLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, m, _, recs := logWith(t, 5)
	// Tamper with the memory store as an attacker would with the database.
	m.recs[1].Body = []byte(`{"check_id":"forged"}`)
	m.recs[2].Body, m.recs[2].Salt = nil, nil
	m.recs = append(m.recs[:3], m.recs[4:]...)
	leaves, err := l.AuditLeaves(ctx, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []evidence.BodyStatus{evidence.BodyIntact, evidence.BodyAltered, evidence.BodyErased, evidence.BodyMissing, evidence.BodyIntact}
	for i, lf := range leaves {
		if lf.Body != want[i] {
			t.Errorf("leaf %d: body %s, want %s", i, lf.Body, want[i])
		}
		if lf.TreeLeaf != evidence.LeafHash(recs[i]) {
			t.Errorf("leaf %d: tree leaf is not the record's", i)
		}
	}
	// Each position carries the stored interior nodes ending there, which
	// are the ones a tree rebuilt from the leaves completes there.
	tree, err := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	if err != nil {
		t.Fatal(err)
	}
	for i, lf := range leaves {
		var want []evidence.Node
		tree.Append(evidence.LeafHash(recs[i]), func(id evidence.NodeID, h [evidence.HashSize]byte) {
			if id.Level > 0 {
				want = append(want, evidence.Node{ID: id, Hash: h})
			}
		})
		if len(lf.Nodes) != len(want) {
			t.Fatalf("leaf %d: nodes %+v, want %+v", i, lf.Nodes, want)
		}
		for j := range want {
			if lf.Nodes[j] != want[j] {
				t.Fatalf("leaf %d: node %+v, want %+v", i, lf.Nodes[j], want[j])
			}
		}
	}
	if _, err := l.AuditLeaves(ctx, 0, 6); !errors.Is(err, evidence.ErrTreeSize) {
		t.Fatalf("beyond the log: %v", err)
	}
	if _, err := l.AuditLeaves(ctx, 0, evidence.MaxAuditPage+1); !errors.Is(err, evidence.ErrTreeSize) {
		t.Fatalf("oversized page: %v", err)
	}
}

func TestAppenderFailsClosed(t *testing.T) {
	t.Parallel()
	m := newMemStore()
	m.failAt = errors.New("connection refused")
	app := evidence.NewAppender(m)
	defer app.Close()
	_, err := app.Append(context.Background(), sealed(t, "x"))
	if !errors.Is(err, evidence.ErrUnavailable) {
		t.Fatalf("append to a dead store: %v", err)
	}
	if _, err := app.Append(context.Background(), evidence.Record{ID: "bad\nid", Kind: evidence.KindCheck, At: time.Now()}); !errors.Is(err, evidence.ErrInvalidRecord) {
		t.Fatalf("invalid record: %v", err)
	}
}
