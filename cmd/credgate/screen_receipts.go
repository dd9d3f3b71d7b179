package main

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// eachResult calls fn with every result of a results file as the screen
// command writes it (format ndjson or csv).
func eachResult(path, format string, fn func(service.ScreenedAnswer) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	if format == "csv" {
		cr := csv.NewReader(br)
		cr.ReuseRecord = true
		header, err := cr.Read()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		col := map[string]int{}
		for i, h := range header {
			col[h] = i
		}
		for _, need := range []string{"line", "subject_id", "outcome", "error", "leaf_index", "proof", "answer"} {
			if _, ok := col[need]; !ok {
				return fmt.Errorf("%s: no %q column", path, need)
			}
		}
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			a := service.ScreenedAnswer{SubjectID: rec[col["subject_id"]], Outcome: policy.Outcome(rec[col["outcome"]])}
			if a.Line, err = strconv.ParseInt(rec[col["line"]], 10, 64); err != nil {
				return fmt.Errorf("%s: line %q", path, rec[col["line"]])
			}
			if ans := rec[col["answer"]]; ans != "" {
				a.Answer = json.RawMessage(ans)
				idx, err := strconv.ParseUint(rec[col["leaf_index"]], 10, 64)
				if err != nil {
					return fmt.Errorf("%s: line %d: leaf_index %q", path, a.Line, rec[col["leaf_index"]])
				}
				a.LeafIndex = &idx
				if p := rec[col["proof"]]; p != "" {
					a.Proof = strings.Split(p, ";")
				}
			}
			if err := fn(a); err != nil {
				return err
			}
		}
	}
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			var a service.ScreenedAnswer
			if jerr := json.Unmarshal(b, &a); jerr != nil {
				return fmt.Errorf("%s: %w", path, jerr)
			}
			if ferr := fn(a); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// chainedReceipt chains one result's proof in its job's tree with the
// receipt of the job's record: evidence.VerifyScreeningReceipt checks it
// offline.
func chainedReceipt(job evidence.Receipt, treeSize uint64, a service.ScreenedAnswer) (evidence.ScreeningReceipt, error) {
	if a.Answer == nil || a.LeafIndex == nil {
		return evidence.ScreeningReceipt{}, fmt.Errorf("line %d has no answer to prove", a.Line)
	}
	proof := make([][evidence.HashSize]byte, len(a.Proof))
	for i, h := range a.Proof {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != evidence.HashSize {
			return evidence.ScreeningReceipt{}, fmt.Errorf("line %d: proof hash %d is not a hex SHA-256", a.Line, i)
		}
		proof[i] = [evidence.HashSize]byte(b)
	}
	return evidence.NewScreeningReceipt(job, job.Record.ID, a.Line, a.SubjectID, a.Answer, *a.LeafIndex, treeSize, proof), nil
}

// jobReceipt reads the receipt of a job's record and the tree size its
// record states.
func jobReceipt(path string) (evidence.Receipt, uint64, error) {
	raw, err := readLimited(path, evidence.MaxReceiptSize)
	if err != nil {
		return evidence.Receipt{}, 0, err
	}
	r, err := evidence.ParseReceipt(raw)
	if err != nil {
		return evidence.Receipt{}, 0, fmt.Errorf("%s: %w", path, err)
	}
	body, err := base64.StdEncoding.DecodeString(r.Record.Body)
	if err != nil {
		return evidence.Receipt{}, 0, fmt.Errorf("%s: record body: %w", path, err)
	}
	var root evidence.ScreeningRoot
	if err := json.Unmarshal(body, &root); err != nil || r.Record.Kind != evidence.KindScreening {
		return evidence.Receipt{}, 0, fmt.Errorf("%s is not the receipt of a screening job's record", path)
	}
	return r, root.TreeSize, nil
}

// writeChainedReceipts writes into dir a chained receipt (LINE.json) for
// every result whose outcome is not clear, and returns how many.
func writeChainedReceipts(results, format, receiptPath, dir string) (int, error) {
	job, size, err := jobReceipt(receiptPath)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	n := 0
	err = eachResult(results, format, func(a service.ScreenedAnswer) error {
		if a.Answer == nil || a.Outcome == "clear" {
			return nil
		}
		r, err := chainedReceipt(job, size, a)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		n++
		return os.WriteFile(filepath.Join(dir, strconv.FormatInt(a.Line, 10)+".json"), append(b, '\n'), 0o600)
	})
	return n, err
}
