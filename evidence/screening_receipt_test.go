package evidence_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// fuzzSignerKey is fuzzVerifierKey's signer (a throwaway test key, also in
// testdata/fuzz/README).
const fuzzSignerKey = "PRIVATE+KEY+credgate.test+6f6af1b6+AfZufGC1E358onq5CsR/AbwhuaGMkvYH+D+f08c7RP0Z"

type nodes map[evidence.NodeID][evidence.HashSize]byte

func (m nodes) TreeNodes(_ context.Context, ids []evidence.NodeID) ([][evidence.HashSize]byte, error) {
	out := make([][evidence.HashSize]byte, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out, nil
}

// chainedReceipt screens 7 answers into a job's tree in files, records its
// root as record 1 of a 3-record log, and chains answer 5's proof with the
// job record's receipt.
func chainedReceipt(t testing.TB) evidence.ScreeningReceipt {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	w, err := evidence.CreateFileTree(filepath.Join(dir, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	var answers [][]byte
	for i := range 7 {
		a := fmt.Appendf(nil, `{"subject":{"id":"9111000000000000%02d","kind":"organization"},"outcome":"clear"}`, i)
		answers = append(answers, a)
		w.Append(evidence.HashLeaf(a))
	}
	size, root, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	ft, err := evidence.OpenFileTree(filepath.Join(dir, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	proof, err := evidence.InclusionProof(ctx, ft, 5, size)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"screening_id": "scr_1", "tree_size": size, "root": hex.EncodeToString(root[:])})
	s, err := evidence.NewSigner("credgate.test/evidence", fuzzSignerKey)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	ns := nodes{}
	var job evidence.Record
	for i, id := range []string{"chk-a", "scr_1", "chk-b"} {
		r := evidence.Record{Index: uint64(i), ID: id, Kind: evidence.KindCheck, Partner: "bank",
			At: time.Date(2026, 12, 3, 0, 0, i, 0, time.UTC), Body: []byte(`{"outcome":"clear"}`)}
		if id == "scr_1" {
			r.Kind, r.Body = evidence.KindScreening, body
		}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		if id == "scr_1" {
			job = r
		}
		log.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) { ns[id] = h })
	}
	cp, err := s.Sign(log.Size(), log.Root())
	if err != nil {
		t.Fatal(err)
	}
	jp, err := evidence.InclusionProof(ctx, ns, 1, log.Size())
	if err != nil {
		t.Fatal(err)
	}
	return evidence.NewScreeningReceipt(evidence.NewReceipt(job, jp, cp), "scr_1", 6, "911100000000000005", answers[5], 5, size, proof)
}

// TestScreeningReceipt: a chained receipt verifies offline, survives its
// own encoding, and a change to any link is refused by that link.
func TestScreeningReceipt(t *testing.T) {
	t.Parallel()
	vs, err := evidence.Verifiers(fuzzVerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	good := chainedReceipt(t)
	raw, _ := json.Marshal(good)
	if os.Getenv("CREDGATE_WRITE_FUZZ_SEED") != "" {
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", raw)
		if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzVerifyScreeningReceipt", "valid_receipt"), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !evidence.IsScreeningReceipt(raw) {
		t.Fatal("not recognised as a chained receipt")
	}
	r, err := evidence.ParseScreeningReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := evidence.VerifyScreeningReceipt(r, vs)
	if err != nil || v.SubjectID != "911100000000000005" || v.Outcome != "clear" || v.Job.Record.ID != "scr_1" {
		t.Fatalf("%+v %v", v, err)
	}
	answer := func(r *evidence.ScreeningReceipt, a string) { r.Answer = base64.StdEncoding.EncodeToString([]byte(a)) }
	for name, c := range map[string]struct {
		tamper func(r *evidence.ScreeningReceipt)
		want   error
	}{
		"answer altered": {func(r *evidence.ScreeningReceipt) {
			answer(r, `{"subject":{"id":"911100000000000005","kind":"organization"},"outcome":"prohibit"}`)
		}, evidence.ErrAnswerInclusion},
		"another leaf":      {func(r *evidence.ScreeningReceipt) { r.LeafIndex = 4 }, evidence.ErrAnswerInclusion},
		"subject relabeled": {func(r *evidence.ScreeningReceipt) { r.SubjectID = "911100000000000004" }, evidence.ErrAnswerSubject},
		"tree size":         {func(r *evidence.ScreeningReceipt) { r.TreeSize = 8 }, evidence.ErrScreeningRecord},
		"another job":       {func(r *evidence.ScreeningReceipt) { r.ScreeningID = "scr_2" }, evidence.ErrScreeningRecord},
		"job record body": {func(r *evidence.ScreeningReceipt) {
			r.JobReceipt.Record.Body = base64.StdEncoding.EncodeToString([]byte(`{"screening_id":"scr_1","tree_size":7,"root":"00"}`))
		}, evidence.ErrRecordHash},
		"job record partner": {func(r *evidence.ScreeningReceipt) { r.JobReceipt.Record.Partner = "other" }, evidence.ErrLeafHash},
		"job record index":   {func(r *evidence.ScreeningReceipt) { r.JobReceipt.LeafIndex = 0 }, evidence.ErrInclusion},
	} {
		bad := good
		bad.InclusionProof = append([]string(nil), good.InclusionProof...)
		c.tamper(&bad)
		if _, err := evidence.VerifyScreeningReceipt(bad, vs); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := evidence.ParseScreeningReceipt(append(raw[:len(raw)-1:len(raw)-1], []byte(`,"extra":1}`)...)); !errors.Is(err, evidence.ErrReceiptFormat) {
		t.Fatalf("unknown field: %v", err)
	}
}

func FuzzVerifyScreeningReceipt(f *testing.F) {
	vs, err := evidence.Verifiers(fuzzVerifierKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := evidence.ParseScreeningReceipt(raw)
		if err != nil {
			if !errors.Is(err, evidence.ErrReceiptFormat) {
				t.Fatalf("parse error outside ErrReceiptFormat: %v", err)
			}
			return
		}
		v, err := evidence.VerifyScreeningReceipt(r, vs)
		if err != nil {
			for _, known := range []error{evidence.ErrReceiptFormat, evidence.ErrRecordHash, evidence.ErrLeafHash,
				evidence.ErrCheckpointFormat, evidence.ErrCheckpointSignature, evidence.ErrInclusion,
				evidence.ErrScreeningRecord, evidence.ErrAnswerInclusion, evidence.ErrAnswerSubject} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		if evidence.HashLeaf(v.Answer) == ([evidence.HashSize]byte{}) || v.LeafIndex >= v.TreeSize || v.Job.Record.Kind != evidence.KindScreening {
			t.Fatalf("verified an inconsistent receipt: %+v", v)
		}
	})
}
