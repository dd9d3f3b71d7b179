package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// errResultsUnproven: a downloaded results file does not agree with the
// tree the job's record names: a row was altered, added, dropped or moved,
// or states another outcome, subject, measures or entries than its answer.
var errResultsUnproven = errors.New("the results do not match the job's tree")

// answerOf is what a results row repeats of its answer (a CSV row its
// lists too: ScreenedAnswer.ListColumns).
type answerOf struct {
	Subject struct {
		ID string `json:"id"`
	} `json:"subject"`
	Outcome policy.Outcome `json:"outcome"`
}

// verifyResultsIn checks a results stream (format ndjson or csv), named
// path in its errors, as the download arrives:
// every row in order, against the job: rows numbered 1 to total; each
// answer the next leaf (its leaf_index), its row's subject and outcome
// (and in CSV its measures and entries) the answer's own; a row without
// an answer an error with no outcome; and the answers' leaves, hashed into
// a tree in file order, number size and make root (hex), which the job's
// record names. The proofs are not needed for that: every answer is here.
func verifyResultsIn(in io.Reader, path, format string, total int64, size uint64, root string) error {
	want, err := hex.DecodeString(root)
	if err != nil || len(want) != evidence.HashSize {
		return fmt.Errorf("%w: the job names no root (%q)", errResultsUnproven, root)
	}
	tree, err := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	if err != nil {
		return err
	}
	var rows int64
	bad := func(line int64, format string, args ...any) error {
		return fmt.Errorf("%w: %s, line %d: %s", errResultsUnproven, path, line, fmt.Sprintf(format, args...))
	}
	err = eachRowIn(in, path, format, false, func(r resultRow) error {
		rows++
		a := r.ScreenedAnswer
		if a.Line != rows {
			return bad(rows, "numbered %d", a.Line)
		}
		if a.Answer == nil {
			if a.Outcome != "" || a.LeafIndex != nil || r.hasProof || (a.Error == nil && r.errorCode == "") {
				return bad(a.Line, "a row without an answer that is not an error")
			}
			return nil
		}
		if a.Error != nil || r.errorCode != "" {
			return bad(a.Line, "an answer with an error")
		}
		if a.LeafIndex == nil || *a.LeafIndex != tree.Size() {
			return bad(a.Line, "its answer is not given as leaf %d", tree.Size())
		}
		var ans answerOf
		if err := json.Unmarshal(a.Answer, &ans); err != nil {
			return bad(a.Line, "its answer is not JSON: %v", err)
		}
		if a.SubjectID != ans.Subject.ID {
			return bad(a.Line, "its subject_id is not its answer's")
		}
		if a.Outcome != ans.Outcome {
			return bad(a.Line, "its outcome %q is not its answer's %q", a.Outcome, ans.Outcome)
		}
		if r.csv {
			if ms, es, err := a.ListColumns(); err != nil || r.measures != ms || r.entries != es {
				return bad(a.Line, "its measures or entries are not its answer's")
			}
		}
		tree.Append(evidence.HashLeaf(a.Answer), nil)
		return nil
	})
	if err != nil {
		return err
	}
	if rows != total || tree.Size() != size {
		return fmt.Errorf("%w: %s has %d rows with %d answers; the job has %d subjects and a tree of %d answers",
			errResultsUnproven, path, rows, tree.Size(), total, size)
	}
	if got := tree.Root(); got != [evidence.HashSize]byte(want) {
		return fmt.Errorf("%w: the answers of %s make the root %x, the job's record names %s", errResultsUnproven, path, got, root)
	}
	return nil
}
