package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// nodeMap is a tree's nodes in memory, for receipts made without a server.
type nodeMap map[evidence.NodeID][evidence.HashSize]byte

func (m nodeMap) TreeNodes(_ context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	out := make([][evidence.HashSize]byte, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out, nil
}

// offlineReceipt makes a receipt of record 2 of a 5-record log, and the
// signer's secret and verifier keys.
func offlineReceipt(t *testing.T) (evidence.Receipt, string, string) {
	t.Helper()
	skey, _ := evidence.GenerateSignerKey("credgate.test")
	s, err := evidence.NewSigner(testOrigin, skey)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	nodes := nodeMap{}
	var recs []evidence.Record
	for i := range 5 {
		r := evidence.Record{Index: uint64(i), ID: "chk-" + string(rune('a'+i)), Kind: evidence.KindCheck, Partner: "p",
			At: time.Now(), Body: []byte(`{"outcome":"clear"}`)}
		_ = r.Seal()
		recs = append(recs, r)
		tree.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) { nodes[id] = h })
	}
	cp, _ := s.Sign(tree.Size(), tree.Root())
	p, err := evidence.InclusionProof(context.Background(), nodes, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.NewReceipt(recs[2], p, cp), skey, s.VerifierKey()
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, skey, vkey := offlineReceipt(t)
	good := filepath.Join(dir, "good.json")
	b, _ := json.Marshal(r)
	_ = os.WriteFile(good, b, 0o600)
	r.Record.Partner = "someone-else"
	bad := filepath.Join(dir, "bad.json")
	b, _ = json.Marshal(r)
	_ = os.WriteFile(bad, b, 0o600)
	// The keys document exactly as GET /v1/evidence/keys serves it.
	keysDoc := filepath.Join(dir, "keys.json")
	b, _ = json.Marshal(map[string]any{"origin": testOrigin, "keys": []map[string]any{{"key": vkey, "current": true}}})
	_ = os.WriteFile(keysDoc, b, 0o600)

	if code, out := runCLI("verify", "--key", vkey, good); code != 0 || !strings.Contains(out, "good.json: OK: check record chk-c") {
		t.Fatalf("good receipt: exit %d\n%s", code, out)
	}
	if code, out := runCLI("verify", "--key", keysDoc, good); code != 0 {
		t.Fatalf("keys document: exit %d\n%s", code, out)
	}
	if code, out := runCLI("verify", "--key", vkey, good, bad); code != 1 ||
		!strings.Contains(out, "bad.json: FAILED: leaf hash mismatch") || !strings.Contains(out, "1 of 2 receipts") {
		t.Fatalf("tampered receipt: exit %d\n%s", code, out)
	}
	if code, _ := runCLI("verify", good); code != 2 {
		t.Fatalf("no key: exit %d, want 2", code)
	}
	code, out := runCLI("verify", "--key", skey, good)
	if code != 1 || strings.Contains(out, skey[len("PRIVATE+KEY+"):]) || !strings.Contains(out, "private signer key") {
		t.Fatalf("private key as --key: exit %d\n%s", code, out)
	}
	if code, out := runCLI("verify", "--key", vkey, filepath.Join(dir, "missing.json")); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("missing file: exit %d\n%s", code, out)
	}
}
