package evidence_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"

	"github.com/credgate/credgate/evidence"
)

// TestRootMismatchInHex: a proof leading to another root names both roots
// in hex on one line (transparency-dev prints decimal byte slices over
// several lines), and stays a proof.RootMismatchError.
func TestRootMismatchInHex(t *testing.T) {
	t.Parallel()
	a, b, wrong := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b")), sha256.Sum256([]byte("wrong"))
	for name, err := range map[string]error{
		// A tree of one leaf: its root is the leaf.
		"inclusion":   evidence.VerifyInclusion(a, 0, 1, nil, wrong),
		"consistency": evidence.VerifyConsistency(1, 2, [][evidence.HashSize]byte{b}, a, wrong),
	} {
		var rm proof.RootMismatchError
		if !errors.As(err, &rm) {
			t.Fatalf("%s: %v, want a RootMismatchError", name, err)
		}
		msg := err.Error()
		want := fmt.Sprintf("calculated root %x does not match expected root %x", rm.CalculatedRoot, wrong)
		if msg != want || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want %q", name, msg, want)
		}
	}
}
