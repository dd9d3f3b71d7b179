package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// nodeMap is a tree's nodes in memory, for receipts of a log the server
// never held.
type nodeMap map[evidence.NodeID][evidence.HashSize]byte

func (m nodeMap) TreeNodes(_ context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	out := make([][evidence.HashSize]byte, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out, nil
}

// otherHistory is the receipt of record idx of an n-record log signed with
// signer, the server's own key, but of records the server never held: what
// a receipt looks like after the log it came from was restored from an
// older copy and grew again, or was rewritten by someone holding the key.
// Offline it verifies.
func otherHistory(t *testing.T, signer *evidence.Signer, n, idx uint64) []byte {
	t.Helper()
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	nodes := nodeMap{}
	var rec evidence.Record
	for i := range n {
		r := evidence.Record{Index: i, ID: "chk-lost-" + string(rune('a'+i%26)), Kind: evidence.KindCheck, Partner: "bank",
			At: time.Date(2031, 1, 1, 0, 0, int(i), 0, time.UTC), Body: []byte(`{"outcome":"prohibit"}`)}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		if i == idx {
			rec = r
		}
		tree.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) { nodes[id] = h })
	}
	cp, err := signer.Sign(tree.Size(), tree.Root())
	if err != nil {
		t.Fatal(err)
	}
	p, err := evidence.InclusionProof(context.Background(), nodes, idx, n)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(evidence.NewReceipt(rec, p, cp))
	return b
}

// TestVerifyReceiptCurrent: a receipt taken from the log is re-proven in
// the log as it is now, after it grew, by a proof asked for or built from
// the tiles; a receipt that verifies offline but whose checkpoint is not a
// prefix of today's log (a rollback, a fork) is ErrNotInLog saying which;
// a log that cannot be read is ErrLogUnread, and a checkpoint signed by a
// key not pinned ErrCheckpoint.
func TestVerifyReceiptCurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newServer(t)
	receipts := s.checks(t, 3)
	vs, err := audit.Verifiers([]string{s.signer.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(s.url)
	a := audit.New(anon, vs, audit.WithOrigin(origin))
	// The checkpoint of the first receipt is the current one, or one the
	// log has since grown past; then it grows more.
	s.checks(t, 20)
	for _, opts := range [][]audit.Option{{audit.WithOrigin(origin)}, {audit.WithTiles(anon)}} {
		for i, r := range receipts {
			v, cur, err := audit.New(anon, vs, opts...).VerifyReceiptCurrent(ctx, r)
			if err != nil || v.Record.Kind != evidence.KindCheck || cur.Size <= v.Checkpoint.Size {
				t.Fatalf("receipt %d (%d options): %+v %+v %v", i, len(opts), v, cur.Checkpoint, err)
			}
		}
	}

	cur, err := a.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		n, idx uint64
		want   string
	}{
		"rolled back":             {cur.Size + 5, cur.Size + 2, "rolled back: the receipt's checkpoint signed"},
		"forked at the same size": {cur.Size, 1, "forked: the log has the"},
		"regrown after a restore": {cur.Size - 4, 2, "rolled back or forked: the log of"},
	} {
		raw := otherHistory(t, s.signer, c.n, c.idx)
		if _, err := audit.VerifyReceipt(raw, vs, origin); err != nil {
			t.Fatalf("%s: the receipt does not even verify offline: %v", name, err)
		}
		_, err := a.VerifyReceiptIn(ctx, raw, cur)
		if !errors.Is(err, audit.ErrNotInLog) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrNotInLog saying %q", name, err, c.want)
		}
		if _, _, err := a.VerifyReceiptCurrent(ctx, raw); !errors.Is(err, audit.ErrNotInLog) {
			t.Errorf("%s: VerifyReceiptCurrent: %v", name, err)
		}
	}

	// Nobody listening: nothing established either way.
	down, _ := client.New("http://127.0.0.1:1", client.WithTimeout(2*time.Second))
	if _, _, err := audit.New(down, vs).VerifyReceiptCurrent(ctx, receipts[0]); !errors.Is(err, audit.ErrLogUnread) || errors.Is(err, audit.ErrNotInLog) {
		t.Fatalf("unreachable log: %v", err)
	}
	// Today's checkpoint signed by a key not pinned.
	other, _ := evidence.GenerateSignerKey("credgate.test")
	os, _ := evidence.NewSigner(origin, other)
	foreign, _ := os.Sign(cur.Size, cur.Root)
	if _, _, err := audit.New(forged{anon, foreign.Note}, vs).VerifyReceiptCurrent(ctx, receipts[0]); !errors.Is(err, audit.ErrCheckpoint) {
		t.Fatalf("foreign checkpoint: %v", err)
	}
	// A receipt that fails offline fails before any request.
	bad := strings.Replace(string(receipts[0]), `"partner":"`, `"partner":"x`, 1)
	if _, _, err := audit.New(down, vs).VerifyReceiptCurrent(ctx, []byte(bad)); !errors.Is(err, evidence.ErrLeafHash) {
		t.Fatalf("tampered receipt: %v", err)
	}
}
