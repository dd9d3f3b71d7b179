package service

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
)

// Watchlists: a partner uploads the subjects it wants to be told about (a
// bank's whole loan book), as files of one subject per line, in parts of
// at most MaxWatchlistBatch lines, each added or removed in one
// transaction. The fan-out (events.go) tells the partner about every change
// of a watched subject, whether or not it checked it.

// Errors of watchlists.
var (
	// ErrInvalidWatchlist: some lines are not subjects; nothing was
	// changed (WatchlistError lists them).
	ErrInvalidWatchlist = errors.New("invalid watchlist")
	// ErrWatchlistTooLarge: more lines than MaxWatchlistBatch in one part.
	ErrWatchlistTooLarge = errors.New("watchlist part too large")
	// ErrInvalidWatchlistOp: an operation other than add or remove.
	ErrInvalidWatchlistOp = errors.New("invalid watchlist operation")
)

// Limits of watchlist uploads.
const (
	// MaxWatchlistBatch is the most subjects of one upload request; a
	// larger list is uploaded in parts (the CLI does it).
	MaxWatchlistBatch = 100_000
	// maxWatchlistLine bounds one line (a subject is 18 characters).
	maxWatchlistLine = 256
	// maxWatchlistErrors is how many bad lines an error lists.
	maxWatchlistErrors = 100
)

// Watchlist operations.
const (
	WatchAdd    = "add"
	WatchRemove = "remove"
)

// WatchlistLine is one rejected line.
type WatchlistLine struct {
	Line int
	Err  error
}

// WatchlistError lists the rejected lines of an upload.
type WatchlistError struct{ Lines []WatchlistLine }

func (e *WatchlistError) Error() string {
	return fmt.Sprintf("%d invalid lines (first at line %d)", len(e.Lines), e.Lines[0].Line)
}

func (e *WatchlistError) Unwrap() error { return ErrInvalidWatchlist }

// WatchlistStore keeps watchlists.
type WatchlistStore interface {
	// WatchSubjects adds (at time at) or removes subjects of partner's
	// watchlist in one transaction and returns how many rows changed;
	// adding a watched subject or removing an unwatched one changes none.
	WatchSubjects(ctx context.Context, partner string, subjects []string, remove bool, at time.Time) (changed, size int64, err error)
	// WatchlistSize counts partner's watched subjects.
	WatchlistSize(ctx context.Context, partner string) (int64, error)
}

// WatchlistResult is what an upload did.
type WatchlistResult struct {
	Op       string `json:"op"`
	Received int    `json:"received"`
	Changed  int64  `json:"changed"`
	Size     int64  `json:"size"`
}

// Watchlists administers partners' watchlists.
type Watchlists struct {
	store WatchlistStore
	audit *Audit
	now   func() time.Time
}

// WatchlistsOption configures Watchlists.
type WatchlistsOption func(*Watchlists)

// WithWatchlistsAudit records uploads in the evidence log.
func WithWatchlistsAudit(a *Audit) WatchlistsOption { return func(w *Watchlists) { w.audit = a } }

// NewWatchlists returns the watchlist service over store.
func NewWatchlists(store WatchlistStore, opts ...WatchlistsOption) *Watchlists {
	w := &Watchlists{store: store, now: time.Now}
	for _, o := range opts {
		o(w)
	}
	return w
}

// ParseWatchlist reads one subject per line (blank lines and lines
// starting with # are skipped; a CSV line's first field is taken), each
// normalised as a check's subject, and refused when the caller may not
// check its kind. It stops at MaxWatchlistBatch+1 subjects.
func ParseWatchlist(r io.Reader, caller Caller) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxWatchlistLine)
	var (
		out  []string
		bad  []WatchlistLine
		line int
	)
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if line == 1 {
			s = strings.TrimPrefix(s, "\ufeff")
		}
		s, ferr := firstCSVField(s)
		if ferr != nil {
			if len(bad) < maxWatchlistErrors {
				bad = append(bad, WatchlistLine{Line: line, Err: ferr})
			}
			continue
		}
		if s == "" || strings.HasPrefix(s, "#") || (line == 1 && strings.EqualFold(s, "subject")) {
			continue
		}
		if len(out) == MaxWatchlistBatch {
			return nil, fmt.Errorf("%w: more than %d subjects; upload in parts", ErrWatchlistTooLarge, MaxWatchlistBatch)
		}
		id, err := policy.ParseSubjectID(s)
		if err == nil && !caller.mayCheckKind(id.Kind) {
			err = fmt.Errorf("%w: %s", ErrSubjectKindNotAllowed, id.Kind)
		}
		if err != nil {
			if len(bad) < maxWatchlistErrors {
				bad = append(bad, WatchlistLine{Line: line, Err: err})
			}
			continue
		}
		out = append(out, id.Value)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			bad = append(bad, WatchlistLine{Line: line + 1, Err: fmt.Errorf("%w: line longer than %d bytes", ErrInvalidWatchlist, maxWatchlistLine)})
			return nil, &WatchlistError{Lines: bad}
		}
		return nil, err
	}
	if len(bad) > 0 {
		return nil, &WatchlistError{Lines: bad}
	}
	return out, nil
}

// firstCSVField is a watchlist line's first field: the line itself when
// it has no comma or quote, else its first CSV field (quotes removed, as
// a spreadsheet writes "9135…",note), trimmed.
func firstCSVField(s string) (string, error) {
	if !strings.ContainsAny(s, ",\"") {
		return s, nil
	}
	r := csv.NewReader(strings.NewReader(s))
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("%w: not a CSV line: %w", ErrInvalidWatchlist, err)
	}
	return strings.TrimSpace(rec[0]), nil
}

// Update adds or removes the subjects read from r to or from the caller's
// watchlist: all of them or, on any bad line, none. The act is recorded in
// the evidence log with the count and a hash of the subjects, never the
// subjects.
//
// A subject of a kind the caller may no longer check (its scope narrowed
// since it was added) stays on the watchlist but tells it nothing: the
// fan-out makes no event about it and the feed and webhook serve none
// made before (events.go, delivery.go), and the rows come back into use
// if the kind is given back. The caller may remove such a subject: a
// removal asks nothing about it.
func (w *Watchlists) Update(ctx context.Context, caller Caller, op string, r io.Reader) (WatchlistResult, error) {
	if op != WatchAdd && op != WatchRemove {
		return WatchlistResult{}, fmt.Errorf("%w: %q (add or remove)", ErrInvalidWatchlistOp, op)
	}
	parseAs := caller
	if op == WatchRemove {
		parseAs.SubjectKinds = nil // any kind
	}
	subjects, err := ParseWatchlist(r, parseAs)
	if err != nil {
		return WatchlistResult{}, err
	}
	now := w.now().UTC().Truncate(time.Microsecond)
	h := sha256.New()
	for _, s := range subjects {
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	details := map[string]any{"op": op, "subjects": len(subjects), "subjects_sha256": hex.EncodeToString(h.Sum(nil))}
	var changed, size int64
	err = w.audit.do(ctx, ActWatchlistChanged, caller.ClientID, details, func() error {
		var err error
		changed, size, err = w.store.WatchSubjects(ctx, caller.ClientID, subjects, op == WatchRemove, now)
		return err
	})
	if err != nil {
		return WatchlistResult{}, err
	}
	return WatchlistResult{Op: op, Received: len(subjects), Changed: changed, Size: size}, nil
}

// Size returns how many subjects the caller watches.
func (w *Watchlists) Size(ctx context.Context, caller Caller) (int64, error) {
	return w.store.WatchlistSize(ctx, caller.ClientID)
}
