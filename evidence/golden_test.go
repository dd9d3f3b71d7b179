package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// Golden receipts: bytes a receipt or promise handed out once must keep
// verifying, whatever the code that verifies them becomes. Every seed named
// valid_* under testdata/fuzz is one (TestFuzzSeedsVerify holds them to
// it, as does cmd/credgate's TestVerifyGoldenSeeds through `credgate
// verify`); the erased-record receipt and the spool promise below are also
// produced deterministically, so that a change to what is produced shows as
// a changed file. CREDGATE_WRITE_FUZZ_SEED=1 rewrites them; do that only
// for a change meant to alter new receipts, never to make old ones verify.

// goldenSalt is a fixed salt, so that generated receipts are the same
// bytes on every run (Record.Seal draws a random one).
func goldenSalt(i int) []byte { return bytes.Repeat([]byte{byte(0xa0 + i)}, evidence.SaltSize) }

// goldenSigner signs with the throwaway key of testdata/fuzz/README.
func goldenSigner(t *testing.T) *evidence.Signer {
	t.Helper()
	s, err := evidence.NewSigner("credgate.test/evidence", fuzzSignerKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenErasedReceipt is the receipt of record 3 of a 6-record log whose
// body and salt were erased: every other link holds.
func goldenErasedReceipt(t *testing.T) []byte {
	t.Helper()
	log, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	ns := nodes{}
	var erased evidence.Record
	for i := range 6 {
		r := evidence.Record{Index: uint64(i), ID: fmt.Sprintf("0190a0b0-0000-7000-8000-00000000000%d", i), Kind: evidence.KindCheck,
			Partner: "tendering-platform", At: time.Date(2026, 5, 1, 8, 0, i, 123456000, time.UTC),
			Body: fmt.Appendf(nil, `{"check_id":"%d","outcome":"prohibit"}`, i), Salt: goldenSalt(i)}
		r.Hash = evidence.RecordHash(r.Salt, r.Body)
		if i == 3 {
			erased = r
		}
		log.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) { ns[id] = h })
	}
	cp, err := goldenSigner(t).Sign(log.Size(), log.Root())
	if err != nil {
		t.Fatal(err)
	}
	p, err := evidence.InclusionProof(context.Background(), ns, 3, log.Size())
	if err != nil {
		t.Fatal(err)
	}
	rc := evidence.NewReceipt(erased, p, cp)
	rc.Record.Body, rc.Record.Salt = "", ""
	b, err := json.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenPromise is a replica's promise of inclusion of a spooled check.
func goldenPromise(t *testing.T) []byte {
	t.Helper()
	r := evidence.Record{ID: "0190a0b0-0000-7000-8000-0000000000ff", Kind: evidence.KindCheck, Partner: "tendering-platform",
		At: time.Date(2026, 5, 1, 8, 0, 0, 654321000, time.UTC), Body: []byte(`{"check_id":"ff","outcome":"restrict"}`), Salt: goldenSalt(9)}
	r.Hash = evidence.RecordHash(r.Salt, r.Body)
	p, err := goldenSigner(t).Promise(evidence.SpoolEntry{Position: 7, Replica: "replica-a", Record: r},
		time.Date(2026, 5, 1, 8, 0, 0, 700000000, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// corpusFile is the "go test fuzz v1" encoding of one []byte input.
func corpusFile(b []byte) []byte { return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b) }

// readCorpus decodes a corpus file of one []byte input.
func readCorpus(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(raw), "\n", 3)
	if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a corpus file of one []byte", path)
	}
	body, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(body)
}

// TestGoldenReceiptsUnchanged: the erased-record receipt and the promise
// the code produces are, byte for byte, the committed ones.
func TestGoldenReceiptsUnchanged(t *testing.T) {
	t.Parallel()
	for path, gen := range map[string]func(*testing.T) []byte{
		filepath.Join("testdata", "fuzz", "FuzzVerifyReceipt", "valid_erased_receipt"): goldenErasedReceipt,
		filepath.Join("testdata", "fuzz", "FuzzVerifyPromise", "valid_promise"):        goldenPromise,
	} {
		want := corpusFile(gen(t))
		if os.Getenv("CREDGATE_WRITE_FUZZ_SEED") != "" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (CREDGATE_WRITE_FUZZ_SEED=1 writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the code now produces other bytes than the committed golden file:\n got %s\nwant %s\n"+
				"(if new receipts are meant to change, rewrite it with CREDGATE_WRITE_FUZZ_SEED=1, and keep the old bytes verifying)", path, want, got)
		}
	}
}

// TestFuzzSeedsVerify keeps the committed seeds honest: every seed named
// valid_* verifies under fuzzVerifierKey through the function `credgate
// verify` uses for its kind, so the fuzzers start from inputs that reach
// every check, and bytes once handed out keep verifying. A corpus with
// valid_* seeds and no verifier here fails, so none goes unchecked.
func TestFuzzSeedsVerify(t *testing.T) {
	t.Parallel()
	vs, err := evidence.Verifiers(fuzzVerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	verify := map[string]func(name string, raw []byte) error{
		"FuzzVerifyReceipt": func(name string, raw []byte) error {
			r, err := evidence.ParseReceipt(raw)
			if err != nil {
				return err
			}
			_, err = evidence.VerifyReceipt(r, vs)
			if strings.Contains(name, "erased") {
				// Erased is what it must say: every other link held.
				if !errors.Is(err, evidence.ErrRecordErased) {
					return fmt.Errorf("want ErrRecordErased, got %v", err)
				}
				return nil
			}
			return err
		},
		"FuzzVerifyScreeningReceipt": func(_ string, raw []byte) error {
			r, err := evidence.ParseScreeningReceipt(raw)
			if err != nil {
				return err
			}
			_, err = evidence.VerifyScreeningReceipt(r, vs)
			return err
		},
		"FuzzVerifyPromise": func(_ string, raw []byte) error {
			p, err := evidence.ParsePromise(raw)
			if err != nil {
				return err
			}
			_, err = evidence.VerifyPromise(p, vs)
			return err
		},
		"FuzzOpenCheckpoint": func(_ string, raw []byte) error {
			_, err := evidence.OpenCheckpoint(raw, vs, "")
			return err
		},
	}
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "valid_*"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, path := range seeds {
		corpus, name := filepath.Base(filepath.Dir(path)), filepath.Base(path)
		v, ok := verify[corpus]
		if !ok {
			t.Errorf("%s: no verifier for the valid seeds of %s: add one here", path, corpus)
			continue
		}
		seen[corpus]++
		if err := v(name, readCorpus(t, path)); err != nil {
			t.Errorf("%s: the committed seed does not verify: %v", path, err)
		}
	}
	// Each verifier has seeds to check (a renamed directory would
	// otherwise leave it checking nothing).
	for corpus := range verify {
		if seen[corpus] == 0 {
			t.Errorf("no valid_* seed in testdata/fuzz/%s", corpus)
		}
	}
}

// FuzzVerifyPromise reads arbitrary bytes as a promise of inclusion (a
// file handed to `credgate verify`): every refusal is a classified error,
// and what verifies states the record it carries.
func FuzzVerifyPromise(f *testing.F) {
	vs, err := evidence.Verifiers(fuzzVerifierKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := evidence.ParsePromise(raw)
		if err != nil {
			if !errors.Is(err, evidence.ErrReceiptFormat) {
				t.Fatalf("parse error outside ErrReceiptFormat: %v", err)
			}
			return
		}
		v, err := evidence.VerifyPromise(p, vs)
		if err != nil {
			for _, known := range []error{evidence.ErrReceiptFormat, evidence.ErrRecordHash, evidence.ErrPromise,
				evidence.ErrCheckpointFormat, evidence.ErrCheckpointSignature} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		if evidence.RecordHash(v.Record.Salt, v.Record.Body) != v.Record.Hash || v.Record.ID != p.Record.ID {
			t.Fatalf("verified an inconsistent promise: %+v", v)
		}
	})
}
