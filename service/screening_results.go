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
// gives them (the same fields, in the same order), without decoding and
// re-encoding each answer: a stored answered line gets its leaf index and
// proof appended, an error line is copied. w is first written to only
// once the job is found done, so an error before that is the whole
// answer.
func (s *Screenings) ResultsNDJSON(ctx context.Context, caller Caller, id string, w io.Writer) (ScreeningJob, error) {
	j, tree, f, err := s.openResults(ctx, caller, id)
	if err != nil {
		return j, err
	}
	defer tree.Close()
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, j.ResultsBytes), 1<<20)
	var (
		leaf uint64
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
			switch lineKind(b) {
			case lineAnswered:
				p, perr := evidence.InclusionProof(ctx, tree, leaf, j.TreeSize)
				if perr != nil {
					return j, perr
				}
				out = append(out, bytes.TrimRight(b, "\n")...)
				out = out[:len(out)-1] // the line's closing brace
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
				leaf++
			case lineError:
				out = append(out, bytes.TrimRight(b, "\n")...)
				out = append(out, '\n')
			default:
				// A line of an older shape: through the decoder.
				var l screenedLine
				if jerr := json.Unmarshal(b, &l); jerr != nil {
					return j, fmt.Errorf("results: %w", jerr)
				}
				a, aerr := s.screenedAnswer(ctx, tree, j, l, &leaf)
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
			return j, nil
		}
		if err != nil {
			return j, err
		}
	}
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
