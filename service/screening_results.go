package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/credgate/credgate/evidence"
)

// ResultsNDJSON writes every subject's result to w as NDJSON, as Results
// gives them (the same fields, in the same order, checked as Results
// checks them), without decoding and re-encoding each answer: a stored
// answered line is written again from its answer (its subject and
// outcome are the answer's) with its leaf index and proof, an error line
// is copied. w is first written to only once the job is found done and
// its first line checked, so an error before that is the whole answer.
func (s *Screenings) ResultsNDJSON(ctx context.Context, caller Caller, id string, w io.Writer) (ScreeningJob, error) {
	j, tree, f, err := s.openResults(ctx, caller, id)
	if err != nil {
		return j, err
	}
	defer tree.Close()
	defer f.Close()
	v, err := s.newResultsVerifier(ctx, j, tree)
	if err != nil {
		return j, err
	}
	br := bufio.NewReaderSize(io.LimitReader(f, j.ResultsBytes), 1<<20)
	var (
		out  []byte
		full []byte
	)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			full = append(full[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) > 0 {
			if cerr := ctx.Err(); cerr != nil {
				return j, cerr
			}
			out = out[:0]
			if sl, ok := splitAnswered(b); ok && v.leaf < j.TreeSize {
				leaf := v.leaf
				p, perr := evidence.InclusionProof(ctx, tree, leaf, j.TreeSize)
				if perr != nil {
					return j, perr
				}
				facts, verr := v.answered(ctx, sl.line, sl.subject, sl.outcome, sl.answer)
				if verr != nil {
					return j, verr
				}
				out = append(out, `{"line":`...)
				out = strconv.AppendInt(out, sl.line, 10)
				out = append(out, `,"subject_id":`...)
				out = appendJSONString(out, facts.Subject)
				out = append(out, `,"outcome":`...)
				out = appendJSONString(out, facts.Outcome)
				out = append(out, `,"answer":`...)
				out = append(out, sl.answer...)
				out = append(out, `,"leaf_index":`...)
				out = strconv.AppendUint(out, leaf, 10)
				out = append(out, `,"proof":[`...)
				for i := range p {
					if i > 0 {
						out = append(out, ',')
					}
					out = append(out, '"')
					out = hex.AppendEncode(out, p[i][:])
					out = append(out, '"')
				}
				out = append(out, "]}\n"...)
			} else if n, ok := errorLine(b); ok {
				if verr := v.errored(n); verr != nil {
					return j, verr
				}
				out = append(out, bytes.TrimRight(b, "\n")...)
				out = append(out, '\n')
			} else {
				// A line of an older shape (or past the tree): through
				// the decoder, checked as Results checks it.
				var l screenedLine
				if jerr := json.Unmarshal(b, &l); jerr != nil {
					return j, fmt.Errorf("%w: screening %s, results line %d: %w", ErrScreeningCorrupt, j.ID, v.lines+1, jerr)
				}
				a, aerr := s.screenedAnswer(ctx, tree, v, l)
				if aerr != nil {
					return j, aerr
				}
				enc, merr := json.Marshal(a)
				if merr != nil {
					return j, merr
				}
				out = append(append(out, enc...), '\n')
			}
			if _, werr := w.Write(out); werr != nil {
				return j, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return j, v.end()
		}
		if err != nil {
			return j, err
		}
	}
}

// storedAnswered is a stored answered line split into its parts.
type storedAnswered struct {
	line             int64
	subject, outcome string
	answer           []byte
}

// splitAnswered splits a stored answered line of appendScreenedLine's
// shape, {"line":N,"subject_id":"…","outcome":"…","answer":{…}}, reading
// its head only; a line of any other shape (an escape in its strings
// included) is not ok, and goes through the decoder.
func splitAnswered(b []byte) (storedAnswered, bool) {
	var sl storedAnswered
	rest, ok := bytes.CutPrefix(b, []byte(`{"line":`))
	if !ok {
		return sl, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil {
		return sl, false
	}
	sl.line = n
	str := func(prefix string) (string, bool) {
		r, ok := bytes.CutPrefix(rest, []byte(prefix))
		if !ok {
			return "", false
		}
		k := bytes.IndexByte(r, '"')
		if k < 0 || bytes.IndexByte(r[:k], '\\') >= 0 {
			return "", false
		}
		rest = r[k+1:]
		return string(r[:k]), true
	}
	rest = rest[i:]
	if sl.subject, ok = str(`,"subject_id":"`); !ok {
		return sl, false
	}
	if sl.outcome, ok = str(`,"outcome":"`); !ok {
		return sl, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"answer":`)); !ok {
		return sl, false
	}
	rest = bytes.TrimRight(rest, "\n")
	if !bytes.HasPrefix(rest, []byte("{")) || !bytes.HasSuffix(rest, []byte("}}")) {
		return sl, false
	}
	sl.answer = rest[:len(rest)-1]
	return sl, true
}

// errorLine reports the line number of a stored error line,
// {"line":N,"subject_id":"…","error":{…}}, reading its head only.
func errorLine(b []byte) (int64, bool) {
	if lineKind(b) != lineError {
		return 0, false
	}
	rest := b[len(`{"line":`):]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	return n, err == nil
}

type resultLineKind int

const (
	lineOther resultLineKind = iota
	lineAnswered
	lineError
)

// lineKind tells a stored answered line (appendScreenedLine's shape) and
// an error line from anything else, reading only the line's head: after
// {"line":N,"subject_id":"…" comes ,"outcome":" or ,"error":.
func lineKind(b []byte) resultLineKind {
	const head = `{"line":`
	if !bytes.HasPrefix(b, []byte(head)) {
		return lineOther
	}
	i := len(head)
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	const subj = `,"subject_id":"`
	if !bytes.HasPrefix(b[i:], []byte(subj)) {
		return lineOther
	}
	i += len(subj)
	for ; i < len(b); i++ {
		if b[i] == '\\' {
			i++
			continue
		}
		if b[i] == '"' {
			break
		}
	}
	if i >= len(b) {
		return lineOther
	}
	rest := b[i+1:]
	switch {
	case bytes.HasPrefix(rest, []byte(`,"outcome":"`)) && bytes.HasSuffix(bytes.TrimRight(rest, "\n"), []byte("}}")):
		return lineAnswered
	case bytes.HasPrefix(rest, []byte(`,"error":{`)):
		return lineError
	}
	return lineOther
}
