package testenv

import (
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
)

// Signer is an evidence signer for origin under a fresh key, so that no
// test's checkpoints verify under another test's key. The key is named
// after origin's host part ("credgate.test" for "credgate.test/evidence"),
// as the tests named theirs before.
func Signer(tb testing.TB, origin string) *evidence.Signer {
	tb.Helper()
	name, _, _ := strings.Cut(origin, "/")
	skey, err := evidence.GenerateSignerKey(name)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := evidence.NewSigner(origin, skey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
