package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/credgate/credgate/evidence"
)

// ErrScreeningCorrupt: a job's results file does not agree with the tree
// its evidence record names (an answer altered, added, dropped or moved,
// or a line's outcome or subject not its answer's). Nothing of it is
// served past the first disagreement; it is an evidence.ErrTreeCorrupt,
// so the API answers 500 evidence_corrupt.
var ErrScreeningCorrupt = fmt.Errorf("screening results do not match the job's tree: %w", evidence.ErrTreeCorrupt)

// resultsVerifier checks a job's results line by line as they are
// served: what a line says is only served if the answer it carries is
// the next leaf of the tree the job's record names, and the line's
// outcome and subject are that answer's. The file sits on a disk that
// the evidence log does not protect; the tree's root does.
//
// Each answer is checked against the job's stored tree at once (its leaf
// hash is the stored leaf), and the stored tree against the recorded root
// as it is rebuilt from the answers: every stored node is compared when
// the rebuilt tree completes it, the root at the end. That is a leaf hash
// and about one node hash an answer, where verifying each answer's proof
// cost twenty; a disagreement found after a line was served stops the
// results there (the gateway aborts the download).
type resultsVerifier struct {
	j       ScreeningJob
	root    [evidence.HashSize]byte
	stored  evidence.NodeReader // the job's tree as its files hold it
	rebuilt *evidence.Tree      // the tree of the answers served so far
	lines   int64               // lines checked
	leaf    uint64              // answers checked: the next answer's leaf index
}

// newResultsVerifier checks that the job's tree is the one its evidence
// record names, and returns the verifier of its lines.
func (s *Screenings) newResultsVerifier(ctx context.Context, j ScreeningJob, stored evidence.NodeReader) (*resultsVerifier, error) {
	r, err := hex.DecodeString(j.Root)
	if err != nil || len(r) != evidence.HashSize {
		return nil, fmt.Errorf("%w: screening %s has no root", ErrScreeningCorrupt, j.ID)
	}
	id := j.RecordID
	if id == "" {
		id = j.ID
	}
	record, err := s.checker.records.Record(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("screening %s: its record: %w", j.ID, err)
	}
	var rec screeningRecord
	if err := json.Unmarshal(record.Body, &rec); err != nil || rec.Root != j.Root || rec.TreeSize != j.TreeSize {
		return nil, fmt.Errorf("%w: screening %s: its evidence record names another tree", ErrScreeningCorrupt, j.ID)
	}
	rebuilt, err := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	if err != nil {
		return nil, err
	}
	return &resultsVerifier{j: j, root: [evidence.HashSize]byte(r), stored: stored, rebuilt: rebuilt}, nil
}

// corrupt is the error of line's disagreement (no subject id: they are
// personal data, and this error is logged).
func (v *resultsVerifier) corrupt(line int64, why string) error {
	return fmt.Errorf("%w: screening %s, results line %d: %s", ErrScreeningCorrupt, v.j.ID, line, why)
}

// next checks that line is the next line of the file.
func (v *resultsVerifier) next(line int64) error {
	v.lines++
	if line != v.lines {
		return v.corrupt(v.lines, "numbered "+strconv.FormatInt(line, 10))
	}
	return nil
}

// errored checks an error line (it carries no answer, so no leaf).
func (v *resultsVerifier) errored(line int64) error { return v.next(line) }

// answered checks an answered line: the answer is leaf v.leaf of the
// job's stored tree, the stored nodes it completes are the ones its
// leaves give, and the line's subject and outcome (when it states one)
// are the answer's. It returns the answer's own facts, which are what is
// served.
func (v *resultsVerifier) answered(ctx context.Context, line int64, subject, outcome string, answer []byte) (answerFacts, error) {
	if err := v.next(line); err != nil {
		return answerFacts{}, err
	}
	if v.leaf >= v.j.TreeSize {
		return answerFacts{}, v.corrupt(line, fmt.Sprintf("more answers than the %d of the job's tree", v.j.TreeSize))
	}
	leaf := evidence.HashLeaf(answer)
	stored, err := v.stored.TreeNodes(ctx, []evidence.NodeID{{Level: 0, Index: v.leaf}})
	if err != nil {
		return answerFacts{}, err
	}
	if stored[0] != leaf {
		return answerFacts{}, v.corrupt(line, fmt.Sprintf("the answer is not leaf %d of the job's tree", v.leaf))
	}
	var bad error
	v.rebuilt.Append(leaf, func(id evidence.NodeID, h [evidence.HashSize]byte) {
		if id.Level == 0 || bad != nil {
			return
		}
		got, err := v.stored.TreeNodes(ctx, []evidence.NodeID{id})
		switch {
		case err != nil:
			bad = err
		case got[0] != h:
			bad = v.corrupt(line, fmt.Sprintf("the tree's node %d/%d is not the hash of its leaves", id.Level, id.Index))
		}
	})
	if bad != nil {
		return answerFacts{}, bad
	}
	f, err := readAnswerFacts(answer)
	if err != nil {
		return answerFacts{}, v.corrupt(line, err.Error())
	}
	if subject != f.Subject || (outcome != "" && outcome != f.Outcome) {
		return answerFacts{}, v.corrupt(line, "its subject or outcome is not its answer's")
	}
	v.leaf++
	return f, nil
}

// end checks that the file held the job's every subject and every answer
// of its tree.
func (v *resultsVerifier) end() error {
	if v.lines != v.j.Total || v.leaf != v.j.TreeSize {
		return fmt.Errorf("%w: screening %s: %d lines with %d answers, the job has %d subjects and a tree of %d",
			ErrScreeningCorrupt, v.j.ID, v.lines, v.leaf, v.j.Total, v.j.TreeSize)
	}
	if v.rebuilt.Root() != v.root {
		return fmt.Errorf("%w: screening %s: its answers do not rebuild the root its evidence record names", ErrScreeningCorrupt, v.j.ID)
	}
	return nil
}

// answerFacts are what a results line repeats of its answer.
type answerFacts struct {
	Subject string
	Outcome string
}

// readAnswerFacts reads an answer's subject id and outcome, stopping once
// it has both: the checker writes them before the measures and entries
// (answer_json.go), so the bulk of an answer is not decoded. The answer is
// proven by its leaf hash, so its bytes are the checker's (no repeated
// members).
func readAnswerFacts(answer []byte) (answerFacts, error) {
	if f, ok := answerFactsAsWritten(answer); ok {
		return f, nil
	}
	var f answerFacts
	dec := json.NewDecoder(bytes.NewReader(answer))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return f, errors.New("its answer is not a JSON object")
	}
	var haveSubject, haveOutcome bool
	for dec.More() && !(haveSubject && haveOutcome) {
		t, err := dec.Token()
		if err != nil {
			return f, errors.New("its answer is not JSON")
		}
		key, _ := t.(string)
		switch key {
		case "subject":
			var s struct {
				ID string `json:"id"`
			}
			err, haveSubject = dec.Decode(&s), true
			f.Subject = s.ID
		case "outcome":
			err, haveOutcome = dec.Decode(&f.Outcome), true
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return f, errors.New("its answer is not JSON")
		}
	}
	if !haveSubject || !haveOutcome || f.Subject == "" || f.Outcome == "" {
		return f, errors.New("its answer has no subject or no outcome")
	}
	return f, nil
}

// answerFactsAsWritten reads an answer's subject id and outcome where the
// checker's encoder puts them (CheckAnswer.appendJSON: check_id, partner,
// subject, action, reference when given, outcome), without a JSON
// decoder, which was a third of the server's work in serving results. ok
// is false for any other shape, which readAnswerFacts then decodes.
func answerFactsAsWritten(b []byte) (answerFacts, bool) {
	var f answerFacts
	// member consumes ,"name": (or {"name": first) and a string after it,
	// returning its content when it holds no escape.
	member := func(prefix string) (string, bool) {
		rest, ok := bytes.CutPrefix(b, []byte(prefix))
		if !ok || len(rest) == 0 || rest[0] != '"' {
			return "", false
		}
		escaped := false
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				escaped = true
				i++
			case '"':
				b = rest[i+1:]
				if escaped {
					return "", true
				}
				return string(rest[1:i]), true
			}
		}
		return "", false
	}
	var ok bool
	if _, ok = member(`{"check_id":`); !ok {
		return f, false
	}
	if _, ok = member(`,"partner":`); !ok {
		return f, false
	}
	if f.Subject, ok = member(`,"subject":{"id":`); !ok || f.Subject == "" {
		return f, false
	}
	if _, ok = member(`,"kind":`); !ok {
		return f, false
	}
	if _, ok = member(`},"action":`); !ok {
		return f, false
	}
	if bytes.HasPrefix(b, []byte(`,"reference":`)) {
		if _, ok = member(`,"reference":`); !ok {
			return f, false
		}
	}
	if f.Outcome, ok = member(`,"outcome":`); !ok || f.Outcome == "" {
		return f, false
	}
	return f, true
}
