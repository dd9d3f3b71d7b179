package main

import (
	"bufio"
	"bytes"
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
	return eachRow(path, format, func(r resultRow) error { return fn(r.ScreenedAnswer) })
}

// resultRow is a result with what a CSV row states besides (the answer's
// measures and entries, joined with ";", and its error's code), which
// verifyResults holds to its answer.
type resultRow struct {
	service.ScreenedAnswer
	csv               bool
	measures, entries string
	errorCode         string
	hasProof          bool // whether the row states a proof (read or not)
}

// eachRow calls fn with every row of a results file, as eachResult.
func eachRow(path, format string, fn func(resultRow) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return eachRowIn(f, path, format, true, fn)
}

// noProof is a results line decoded without its proof, which checking a
// row against its answer does not need: twenty strings a row, spared.
type noProof struct {
	service.ScreenedAnswer
	Proof json.RawMessage `json:"proof"`
}

// eachRowIn is eachRow over r, a results stream named path in errors; the
// rows' proofs are read only when proofs is true.
func eachRowIn(r io.Reader, path, format string, proofs bool, fn func(resultRow) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
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
		for _, need := range []string{"line", "subject_id", "outcome", "measures", "entries", "error", "leaf_index", "proof", "answer"} {
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
			r := resultRow{csv: true, measures: rec[col["measures"]], entries: rec[col["entries"]], errorCode: rec[col["error"]]}
			a := &r.ScreenedAnswer
			a.SubjectID, a.Outcome = rec[col["subject_id"]], policy.Outcome(rec[col["outcome"]])
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
					r.hasProof = true
					if proofs {
						a.Proof = strings.Split(p, ";")
					}
				}
			}
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			var r resultRow
			if proofs {
				if jerr := json.Unmarshal(b, &r.ScreenedAnswer); jerr != nil {
					return fmt.Errorf("%s: %w", path, jerr)
				}
				r.hasProof = len(r.Proof) > 0
			} else if a, ok := splitRow(b); ok {
				r.ScreenedAnswer, r.hasProof = a, true
			} else {
				var np noProof
				if jerr := json.Unmarshal(b, &np); jerr != nil {
					return fmt.Errorf("%s: %w", path, jerr)
				}
				r.ScreenedAnswer = np.ScreenedAnswer
				r.hasProof = len(np.Proof) > 0 && string(np.Proof) != "null" && string(np.Proof) != "[]"
			}
			if ferr := fn(r); ferr != nil {
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

// splitRow reads an answered results line of the exact shape the server
// writes, {"line":N,"subject_id":"…","outcome":"…","answer":{…},
// "leaf_index":N,"proof":[…]}, without decoding its proof: the proof is
// two thirds of the line, and checking rows against their answers and the
// tree's root does not read it. The answer is returned as it stands (its
// reader decodes it). ok is false for any other line, which is then
// decoded whole. The answer ends where the leaf index's member begins,
// found from the line's end.
func splitRow(b []byte) (service.ScreenedAnswer, bool) {
	var a service.ScreenedAnswer
	rest, ok := bytes.CutPrefix(bytes.TrimRight(b, "\r\n"), []byte(`{"line":`))
	if !ok {
		return a, false
	}
	digits := func(b []byte) (uint64, []byte, bool) {
		n := 0
		for n < len(b) && b[n] >= '0' && b[n] <= '9' {
			n++
		}
		v, err := strconv.ParseUint(string(b[:n]), 10, 63)
		return v, b[n:], err == nil
	}
	word := func(b []byte, key string) (string, []byte, bool) {
		b, ok := bytes.CutPrefix(b, []byte(`,"`+key+`":"`))
		end := bytes.IndexByte(b, '"')
		if !ok || end < 0 || bytes.IndexByte(b[:end], '\\') >= 0 {
			return "", nil, false
		}
		return string(b[:end]), b[end+1:], true
	}
	line, rest, ok := digits(rest)
	if !ok {
		return a, false
	}
	subject, rest, ok := word(rest, "subject_id")
	if !ok {
		return a, false
	}
	outcome, rest, ok := word(rest, "outcome")
	if !ok {
		return a, false
	}
	rest, ok = bytes.CutPrefix(rest, []byte(`,"answer":`))
	// From the end: the proof is hex strings, so its "[" is the line's
	// last; before it stand the leaf index and its name.
	open := bytes.LastIndexByte(rest, '[')
	if !ok || open < 0 || !bytes.HasSuffix(rest, []byte("]}")) {
		return a, false
	}
	head, ok := bytes.CutSuffix(rest[:open], []byte(`,"proof":`))
	d := len(head)
	for d > 0 && head[d-1] >= '0' && head[d-1] <= '9' {
		d--
	}
	at := d - len(`,"leaf_index":`)
	if !ok || at < 0 || string(head[at:d]) != `,"leaf_index":` {
		return a, false
	}
	idx, tail, ok := digits(head[d:])
	if !ok || len(tail) != 0 {
		return a, false
	}
	a.Line, a.SubjectID, a.Outcome = int64(line), subject, policy.Outcome(outcome)
	a.Answer, a.LeafIndex = json.RawMessage(rest[:at]), &idx
	return a, true
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
	r, root, err := jobReceiptTree(path)
	return r, root.TreeSize, err
}

// jobReceiptTree reads the receipt of a job's record and the tree its
// record states.
func jobReceiptTree(path string) (evidence.Receipt, evidence.ScreeningRoot, error) {
	raw, err := readLimited(path, evidence.MaxReceiptSize)
	if err != nil {
		return evidence.Receipt{}, evidence.ScreeningRoot{}, err
	}
	r, root, err := parseJobReceipt(raw)
	if err != nil {
		return r, root, fmt.Errorf("%s: %w", path, err)
	}
	return r, root, nil
}

// parseJobReceipt decodes the receipt of a job's record and the tree its
// record states.
func parseJobReceipt(raw []byte) (evidence.Receipt, evidence.ScreeningRoot, error) {
	var root evidence.ScreeningRoot
	r, err := evidence.ParseReceipt(raw)
	if err != nil {
		return evidence.Receipt{}, root, err
	}
	body, err := base64.StdEncoding.DecodeString(r.Record.Body)
	if err != nil {
		return evidence.Receipt{}, root, fmt.Errorf("record body: %w", err)
	}
	if err := json.Unmarshal(body, &root); err != nil || r.Record.Kind != evidence.KindScreening {
		return evidence.Receipt{}, root, errors.New("not the receipt of a screening job's record")
	}
	return r, root, nil
}

// writeChainedReceipts writes into dir a chained receipt (LINE.json) for
// every result whose answer's outcome is not clear, and returns how many.
// Which results those are is read from each answer itself (the bytes the
// proof covers), and a receipt is written only with a proof that leads to
// the root the job's record names.
func writeChainedReceipts(results, format, receiptPath, dir string) (int, error) {
	job, root, err := jobReceiptTree(receiptPath)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	if err := checkReceiptsDir(dir, root.ScreeningID); err != nil {
		return 0, err
	}
	size := root.TreeSize
	n := 0
	err = eachResult(results, format, func(a service.ScreenedAnswer) error {
		if a.Answer == nil {
			return nil
		}
		var ans answerOf
		if err := json.Unmarshal(a.Answer, &ans); err != nil {
			return fmt.Errorf("%w: line %d: its answer is not JSON: %w", errResultsUnproven, a.Line, err)
		}
		if ans.Outcome == policy.OutcomeClear {
			return nil
		}
		if a.LeafIndex == nil {
			return fmt.Errorf("line %d has no answer to prove", a.Line)
		}
		if err := service.VerifyScreenedAnswer(a.Answer, *a.LeafIndex, size, a.Proof, root.Root); err != nil {
			return fmt.Errorf("%w: line %d: %w", errResultsUnproven, a.Line, err)
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
		// A receipt names its subject: its owner's alone, even where an
		// earlier run left one of another mode.
		f, err := createPrivate(filepath.Join(dir, strconv.FormatInt(a.Line, 10)+".json"))
		if err != nil {
			return err
		}
		if _, err := f.Write(append(b, '\n')); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	return n, err
}

// errReceiptsDirTaken: a --receipts directory holds JSON files that are
// not chained receipts of the screening whose receipts are to be written
// there, which a loop over DIR/*.json would take for its hits.
var errReceiptsDirTaken = errors.New("the directory holds other receipts")

// checkReceiptsDir refuses dir (errReceiptsDirTaken) when it holds a
// *.json receipt that is not a chained receipt of screening id (of no
// screening yet when id is ""): another screening's, or a single record's.
// A verify loop over DIR/*.json would take it for one of this file's
// hits. The receipts of a screening are so written where no other
// receipts stand. A dir that does not exist yet, or holds only receipts
// of this screening (a re-attached run's), passes; so do files that are
// no receipt at all (a receipt cut short by an interrupted run, which
// the same job's run writes again), which verify refuses loudly.
func checkReceiptsDir(dir, id string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		what, of := receiptOf(path)
		if what == "" || (what == "screening" && id != "" && of == id) {
			continue
		}
		return fmt.Errorf("%w: %s is a receipt of %s %s: give a new or empty directory, so that its *.json are the receipts of this screening alone",
			errReceiptsDirTaken, path, what, of)
	}
	return nil
}

// receiptOf says what a receipt file proves: ("screening", its ID) for
// a chained receipt, ("record", its ID) for the receipt of a single
// record, ("", "") for a file that is no receipt.
func receiptOf(path string) (what, id string) {
	raw, err := readLimited(path, 4*evidence.MaxReceiptSize)
	if err != nil {
		return "", ""
	}
	if evidence.IsScreeningReceipt(raw) {
		var r struct {
			JobReceipt json.RawMessage `json:"job_receipt"`
		}
		if json.Unmarshal(raw, &r) != nil {
			return "", ""
		}
		if _, root, err := parseJobReceipt(r.JobReceipt); err == nil {
			return "screening", root.ScreeningID
		}
		return "", ""
	}
	if r, err := evidence.ParseReceipt(raw); err == nil {
		return "record", r.Record.ID
	}
	return "", ""
}
