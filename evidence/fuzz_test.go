package evidence_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
)

// The parsers of outside input here are the checkpoint note (fetched from
// a server, or kept by an auditor) and the receipt (a file handed to
// `credgate verify`). Seed corpora are in testdata/fuzz.

// fuzzVerifierKey verifies the seed receipts and checkpoints in
// testdata/fuzz (a throwaway test key; its signer key is in testdata/fuzz/README).
const fuzzVerifierKey = "credgate.test+6f6af1b6+AR0b5ps0SMACa8VY3VxCNUgB14wida4LOtxC2XHwoNSb"

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("credgate.test/evidence\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := evidence.ParseCheckpoint(text)
		if err != nil {
			if !errors.Is(err, evidence.ErrCheckpointFormat) {
				t.Fatalf("error outside ErrCheckpointFormat: %v", err)
			}
			return
		}
		// What parses re-encodes to a prefix of the input (extension lines
		// are dropped) and parses to the same checkpoint.
		m := c.Marshal()
		if !bytes.HasPrefix(text, m) {
			t.Fatalf("%q parsed to %+v, which marshals to %q", text, c, m)
		}
		again, err := evidence.ParseCheckpoint(m)
		if err != nil || again != c {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	vs, err := evidence.Verifiers(fuzzVerifierKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := evidence.OpenCheckpoint(msg, vs, "")
		if err != nil {
			if !errors.Is(err, evidence.ErrCheckpointFormat) && !errors.Is(err, evidence.ErrCheckpointSignature) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Note, msg) {
			t.Fatal("opened note differs from the input")
		}
	})
}

func FuzzVerifyReceipt(f *testing.F) {
	vs, err := evidence.Verifiers(fuzzVerifierKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := evidence.ParseReceipt(raw)
		if err != nil {
			if !errors.Is(err, evidence.ErrReceiptFormat) {
				t.Fatalf("parse error outside ErrReceiptFormat: %v", err)
			}
			return
		}
		v, err := evidence.VerifyReceipt(r, vs)
		if err != nil {
			for _, known := range []error{evidence.ErrReceiptFormat, evidence.ErrRecordHash, evidence.ErrLeafHash,
				evidence.ErrCheckpointFormat, evidence.ErrCheckpointSignature, evidence.ErrInclusion, evidence.ErrRecordErased} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		// Whatever verifies is consistent with itself.
		if evidence.RecordHash(v.Record.Salt, v.Record.Body) != v.Record.Hash || v.Record.Index >= v.Checkpoint.Size {
			t.Fatalf("verified an inconsistent receipt: %+v", v)
		}
	})
}

func FuzzParseTilePath(f *testing.F) {
	f.Add("0/x001/x234/067.p/8")
	f.Add("entries/000")
	f.Fuzz(func(t *testing.T, p string) {
		c, err := evidence.ParseTilePath(p)
		if err != nil {
			if !errors.Is(err, evidence.ErrNoTile) {
				t.Fatalf("error outside ErrNoTile: %v", err)
			}
			return
		}
		// Exactly one spelling per tile: what parses is what Path writes.
		if got := strings.TrimPrefix(c.Path(), "tile/"); got != p {
			t.Fatalf("%q parsed to %+v, which is spelled %q", p, c, got)
		}
	})
}

func FuzzParseEntryBundle(f *testing.F) {
	f.Add([]byte("\x00\x03abc\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := evidence.ParseEntryBundle(b)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range entries {
			again = append(again, byte(len(e)>>8), byte(len(e)))
			again = append(again, e...)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("bundle %x re-encodes to %x", b, again)
		}
	})
}

// FuzzScanSpool reads arbitrary bytes as a spool file (one left by a crash,
// a damaged disk): it never panics; what it accepts is a prefix of the
// input, and each entry it returns checks (its record hash holds).
func FuzzScanSpool(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, good, err := evidence.ScanSpool(data)
		if err != nil {
			if !errors.Is(err, evidence.ErrSpoolCorrupt) {
				t.Fatalf("error outside ErrSpoolCorrupt: %v", err)
			}
			return
		}
		if good < 0 || good > int64(len(data)) {
			t.Fatalf("good length %d of %d bytes", good, len(data))
		}
		for _, e := range entries {
			if evidence.RecordHash(e.Record.Salt, e.Record.Body) != e.Record.Hash || e.Position == 0 {
				t.Fatalf("entry %+v does not check", e)
			}
		}
		// Reading the good part again gives the same entries, all of it.
		again, g2, err := evidence.ScanSpool(data[:good])
		if err != nil || g2 != good || len(again) != len(entries) {
			t.Fatalf("rescan of the good part: %d entries, %d bytes, %v", len(again), g2, err)
		}
	})
}
