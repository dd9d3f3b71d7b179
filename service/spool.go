package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/durable"
)

// When the evidence log's database cannot commit within its bound, a
// replica still answers checks whose answer rests on data (cached within
// the staleness bound, or unverifiable): it appends the record to its
// local spool, fsync'd, before the answer leaves, and hands out a signed
// promise of inclusion instead of a log index. A background integrator
// appends the spooled records to the log, in spool order, exactly once,
// when the database is back (docs/EVIDENCE.md, "When the database is away").

// Spool is the local spool a SpoolingLog falls back to (evidence.Spool).
type Spool interface {
	Append(ctx context.Context, recs ...evidence.Record) ([]evidence.SpoolEntry, error)
	Pending(n int) ([]evidence.SpoolEntry, error)
	MarkIntegrated(pos uint64) error
	Stats() evidence.SpoolStats
}

// Promiser signs promises of inclusion (evidence.Signer).
type Promiser interface {
	Promise(e evidence.SpoolEntry, at time.Time) (evidence.Promise, error)
}

// ErrSpoolStuck: the spool holds records that cannot be integrated into
// the log for a reason waiting will not cure (a conflicting record, a
// damaged or broken spool); an operator must look.
var ErrSpoolStuck = errors.New("evidence spool cannot be integrated")

// ErrSpoolConflict: the log holds a record with a spooled record's id but
// another hash.
var ErrSpoolConflict = errors.New("the log holds another record under a spooled record's id")

// ErrSpoolRecordRefused: the log's database refuses a spooled record for
// what it holds (evidence.Refused), appended alone; retrying it unchanged
// cannot succeed. A spool with a directory sets the record aside there
// (quarantine) and integrates the rest; one without stops at it, stuck.
var ErrSpoolRecordRefused = errors.New("the log's database refuses a spooled record")

// SpoolQuarantineDir is the directory of a spool's directory where records
// the log's database refuses are set aside, one file each
// (<position, 20 digits>.json), for an operator: the spool entry's fields
// (position, replica, id, kind, partner, at, body, salt, hash) and why and
// when it was set aside (refused, set_aside_at).
const SpoolQuarantineDir = "quarantine"

// Spool states, as /readyz shows them.
const (
	SpoolEmpty       = "empty"
	SpoolIntegrating = "integrating"
	SpoolStuck       = "stuck"
)

// DefaultSpoolBound is how long a check waits for the log before its
// record is spooled.
const DefaultSpoolBound = 2 * time.Second

// integrateChunk is how many spooled records are integrated per commit.
const integrateChunk = 256

// SpoolingLog is an EvidenceLog that falls back to a local spool for check
// records the log cannot commit within its bound, and integrates them into
// the log later (Run). Administrative acts are never spooled: they change
// the database, which is away, and fail closed as before.
type SpoolingLog struct {
	log EvidenceLog
	// within is log's own bounded Append, when it has one
	// (evidence.Appender.AppendWithin).
	within   func(ctx context.Context, d time.Duration, recs ...evidence.Record) ([]evidence.Record, error)
	spool    Spool
	promiser Promiser
	records  EvidenceReader
	bound    time.Duration
	now      func() time.Time
	retry    time.Duration
	// afterCommit runs between a chunk's commit and its spool mark
	// (tests inject a crash there).
	afterCommit func() error

	wake                           chan struct{}
	appended, integrated, failures atomic.Uint64
	// quarantined counts the records set aside in the quarantine
	// directory, those found there at start included.
	quarantined atomic.Uint64
	logger      *slog.Logger

	mu      sync.Mutex
	lastErr error
	stuck   bool
}

// boundedLog is an EvidenceLog that bounds its own wait
// (evidence.Appender). The spool's bound is passed to it rather than set
// as the deadline of a derived context: on the check path that context,
// its timer and its registration with the request's context were about 3 %
// of the server's CPU, beside the timer the appender runs anyway.
type boundedLog interface {
	AppendWithin(ctx context.Context, d time.Duration, recs ...evidence.Record) ([]evidence.Record, error)
}

var _ boundedLog = (*evidence.Appender)(nil)

// SpoolingLogOption configures a SpoolingLog.
type SpoolingLogOption func(*SpoolingLog)

// WithSpoolBound sets how long a check waits for the log before its record
// is spooled (default DefaultSpoolBound).
func WithSpoolBound(d time.Duration) SpoolingLogOption {
	return func(l *SpoolingLog) {
		if d > 0 {
			l.bound = d
		}
	}
}

// WithSpoolRetry sets how long the integrator waits after a failed attempt
// (default 500ms).
func WithSpoolRetry(d time.Duration) SpoolingLogOption {
	return func(l *SpoolingLog) {
		if d > 0 {
			l.retry = d
		}
	}
}

// WithAfterIntegrationCommit runs fn after each integrated chunk is
// committed to the log and before the spool marks it; an error stops the
// integration there, as a crash would (tests).
func WithAfterIntegrationCommit(fn func() error) SpoolingLogOption {
	return func(l *SpoolingLog) { l.afterCommit = fn }
}

// WithSpoolLogger sets the logger of the integrator (default
// slog.Default()): it logs the records it sets aside, never their bodies.
func WithSpoolLogger(lg *slog.Logger) SpoolingLogOption {
	return func(l *SpoolingLog) {
		if lg != nil {
			l.logger = lg
		}
	}
}

// NewSpoolingLog returns log with spool as its fallback; records reads the
// log back, so that integration skips what is already there.
func NewSpoolingLog(log EvidenceLog, spool Spool, promiser Promiser, records EvidenceReader, opts ...SpoolingLogOption) *SpoolingLog {
	l := &SpoolingLog{log: log, spool: spool, promiser: promiser, records: records, bound: DefaultSpoolBound,
		now: time.Now, retry: 500 * time.Millisecond, wake: make(chan struct{}, 1), logger: slog.Default()}
	if b, ok := log.(boundedLog); ok {
		l.within = b.AppendWithin
	}
	for _, o := range opts {
		o(l)
	}
	if dir := l.quarantineDir(); dir != "" {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".json") {
				l.quarantined.Add(1)
			}
		}
	}
	return l
}

// Append commits recs to the log, or, when the log cannot commit them
// within the bound and they are all check records, spools them and returns
// them each with a signed promise. Records are sealed here, before either,
// so that a record the log commits after all (late) has the hash its
// promise names, and integration finds it there.
func (l *SpoolingLog) Append(ctx context.Context, recs ...evidence.Record) ([]evidence.Record, error) {
	recs = append([]evidence.Record(nil), recs...)
	for i := range recs {
		if recs[i].Salt == nil {
			if err := recs[i].Seal(); err != nil {
				return nil, fmt.Errorf("seal evidence record: %w", err)
			}
		}
	}
	out, err := l.appendWithin(ctx, recs)
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil || !(errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) ||
		errors.Is(err, evidence.ErrRefused) {
		// A record the log's database refuses is not spooled: the spool
		// could never integrate it, and its promise would never be kept.
		return nil, err
	}
	for i := range recs {
		if r := &recs[i]; r.Kind != evidence.KindCheck || keyedCheck(r) {
			// A keyed check is not spooled (idempotency.go): its key could
			// not be looked up, nor its retry replay it, until integrated.
			return nil, err
		}
	}
	entries, serr := l.spool.Append(ctx, recs...)
	if serr != nil {
		l.failures.Add(1)
		return nil, fmt.Errorf("%w: %w; nor could it be spooled: %w", evidence.ErrUnavailable, err, serr)
	}
	at := l.now()
	for i, e := range entries {
		p, err := l.promiser.Promise(e, at)
		if err != nil {
			// Spooled: it will be integrated; only the promise is missing,
			// and an answer without evidence does not leave.
			l.failures.Add(1)
			return nil, fmt.Errorf("%w: %w", evidence.ErrUnavailable, err)
		}
		recs[i].Promise = &p
	}
	l.appended.Add(uint64(len(recs)))
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return recs, nil
}

// appendWithin appends recs to the log, waiting at most the spool's bound.
func (l *SpoolingLog) appendWithin(ctx context.Context, recs []evidence.Record) ([]evidence.Record, error) {
	if l.within != nil {
		return l.within(ctx, l.bound, recs...)
	}
	cctx, cancel := context.WithTimeout(ctx, l.bound)
	defer cancel()
	return l.log.Append(cctx, recs...)
}

// Run integrates the spool into the log until ctx ends: whenever records
// are pending, in spool order, retrying while the log is away.
func (l *SpoolingLog) Run(ctx context.Context) {
	for {
		n, err := l.IntegrateOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := l.retry
		if err == nil && n > 0 {
			continue
		}
		if err == nil {
			wait = 2 * l.retry // idle: appends wake it early
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.wake:
			t.Stop()
			if err != nil {
				// Still failing: do not hammer an absent database.
				time.Sleep(l.retry / 4)
			}
		case <-t.C:
		}
	}
}

// IntegrateOnce integrates up to one chunk of pending records and returns
// how many spool entries it settled. A record already in the log (a
// commit that was answered too late, or a crash between a commit and the
// spool's mark) is not appended again.
func (l *SpoolingLog) IntegrateOnce(ctx context.Context) (int, error) {
	n, err := l.integrateOnce(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err
	l.stuck = err != nil && !transient(err)
	if err != nil {
		l.failures.Add(1)
	}
	return n, err
}

func (l *SpoolingLog) integrateOnce(ctx context.Context) (int, error) {
	entries, err := l.spool.Pending(integrateChunk)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	todo := make([]evidence.Record, 0, len(entries))
	var todoEntries []evidence.SpoolEntry
	for _, e := range entries {
		in, err := l.inLog(ctx, e)
		if err != nil {
			return 0, err
		}
		if !in {
			rec := e.Record
			rec.Index, rec.Promise = 0, nil
			todo = append(todo, rec)
			todoEntries = append(todoEntries, e)
		}
	}
	if len(todo) > 0 {
		if _, err := l.log.Append(ctx, todo...); err != nil {
			if !evidence.Refused(err) {
				return 0, fmt.Errorf("append spooled records: %w", err)
			}
			// The database refused the chunk for what a record holds:
			// retried whole, it would be refused forever, and the records
			// after it with it. Record by record, a record refused alone is
			// set aside and the others are integrated.
			if err := l.integrateApart(ctx, todoEntries); err != nil {
				return 0, err
			}
		}
	}
	if l.afterCommit != nil {
		if err := l.afterCommit(); err != nil {
			return 0, err
		}
	}
	if err := l.spool.MarkIntegrated(entries[len(entries)-1].Position); err != nil {
		return 0, err
	}
	l.integrated.Add(uint64(len(entries)))
	return len(entries), nil
}

// inLog reports whether e's record is in the log already (with e's hash:
// another hash under its id is ErrSpoolConflict).
func (l *SpoolingLog) inLog(ctx context.Context, e evidence.SpoolEntry) (bool, error) {
	have, err := l.records.Record(ctx, e.Record.ID)
	switch {
	case err == nil:
		if have.Hash != e.Record.Hash {
			return false, fmt.Errorf("%w: %q at spool position %d", ErrSpoolConflict, e.Record.ID, e.Position)
		}
		return true, nil
	case errors.Is(err, evidence.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("read the log: %w", err)
	}
}

// integrateApart appends entries one at a time, in spool order, after
// their chunk was refused: those already in the log (the appender commits
// a refused group in parts, evidence.Appender) are skipped, and one the
// database refuses alone is set aside (quarantine) before the chunk is
// marked. Any other error stops it, nothing marked: the next attempt reads
// the log again and appends what is still missing, exactly once.
func (l *SpoolingLog) integrateApart(ctx context.Context, entries []evidence.SpoolEntry) error {
	for _, e := range entries {
		in, err := l.inLog(ctx, e)
		if err != nil {
			return err
		}
		if in {
			continue
		}
		rec := e.Record
		rec.Index, rec.Promise = 0, nil
		_, err = l.log.Append(ctx, rec)
		if err == nil {
			continue
		}
		if !evidence.Refused(err) {
			return fmt.Errorf("append spooled record: %w", err)
		}
		// A refusal of an id already in the log: committed meanwhile, or
		// another record under its id.
		if in, rerr := l.inLog(ctx, e); rerr != nil || in {
			if rerr != nil {
				return rerr
			}
			continue
		}
		if err := l.quarantine(e, err); err != nil {
			return err
		}
	}
	return nil
}

// quarantineDir is where refused records are set aside: in the spool's
// directory, "" for a spool that has none.
func (l *SpoolingLog) quarantineDir() string {
	d, ok := l.spool.(interface{ Dir() string })
	if !ok || d.Dir() == "" {
		return ""
	}
	return filepath.Join(d.Dir(), SpoolQuarantineDir)
}

// quarantinedRecord is a quarantine file: the spool entry's fields, and
// why and when it was set aside.
type quarantinedRecord struct {
	Position   uint64        `json:"position"`
	Replica    string        `json:"replica"`
	ID         string        `json:"id"`
	Kind       evidence.Kind `json:"kind"`
	Partner    string        `json:"partner"`
	At         time.Time     `json:"at"`
	Body       []byte        `json:"body"`
	Salt       []byte        `json:"salt"`
	Hash       string        `json:"hash"`
	Refused    string        `json:"refused"`
	SetAsideAt time.Time     `json:"set_aside_at"`
}

// quarantine sets e aside, refused by the log's database for cause: it
// writes e to the quarantine directory, durably (file and directory
// synced), before the spool may mark past it, so that the record is kept
// whatever happens to the spool after. It logs the record's position, id
// and kind and the database's error, never the body (an ID number, a
// name). Without a quarantine directory it fails, ErrSpoolRecordRefused:
// the spool is stuck at the record.
func (l *SpoolingLog) quarantine(e evidence.SpoolEntry, cause error) error {
	dir := l.quarantineDir()
	if dir == "" {
		return fmt.Errorf("%w: record %q at spool position %d, and the spool has no directory to set it aside in: %w",
			ErrSpoolRecordRefused, e.Record.ID, e.Position, cause)
	}
	r := e.Record
	payload, err := json.Marshal(quarantinedRecord{Position: e.Position, Replica: e.Replica, ID: r.ID, Kind: r.Kind,
		Partner: r.Partner, At: r.At, Body: r.Body, Salt: r.Salt, Hash: hex.EncodeToString(r.Hash[:]),
		Refused: cause.Error(), SetAsideAt: l.now().UTC()})
	if err != nil {
		return fmt.Errorf("set aside spooled record %q: %w", r.ID, err)
	}
	name := fmt.Sprintf("%020d.json", e.Position)
	if err := durable.WriteFile(dir, name, payload); err != nil {
		return fmt.Errorf("%w: record %q at spool position %d could not be set aside: %w", ErrSpoolRecordRefused, r.ID, e.Position, err)
	}
	l.quarantined.Add(1)
	l.logger.Error("evidence spool: the log's database refuses a spooled record; set aside, the rest is integrated",
		"replica", e.Replica, "position", e.Position, "record", r.ID, "kind", r.Kind,
		"file", filepath.Join(dir, name), "err", cause)
	return nil
}

// Drain integrates the pending records until none is left, ctx ends, or
// an error waiting will not cure; it returns how many are still pending
// and, when some are, the last error. It must not run beside Run (one
// integrator at a time). serve drains at shutdown, after the requests: a
// replica whose spool goes with it (a pod's emptyDir) must not leave the
// only evidence of answered checks behind when the database is there to
// take it.
func (l *SpoolingLog) Drain(ctx context.Context) (int, error) {
	for {
		if l.spool.Stats().Pending == 0 {
			return 0, nil
		}
		n, err := l.IntegrateOnce(ctx)
		if err == nil && n > 0 {
			continue
		}
		if err == nil || !transient(err) || ctx.Err() != nil {
			return l.spool.Stats().Pending, err
		}
		t := time.NewTimer(l.retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return l.spool.Stats().Pending, err
		case <-t.C:
		}
	}
}

// transient reports whether an integration error may pass by itself (the
// database away or slow).
func transient(err error) bool {
	if errors.Is(err, ErrSpoolRecordRefused) {
		// Wraps the appender's ErrUnavailable, but waiting cures nothing.
		return false
	}
	return errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, ErrStoreUnavailable) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || Unreachable(err)
}

// SpoolStatus is the spool's state for /readyz and metrics.
type SpoolStatus struct {
	Replica string     `json:"replica"`
	State   string     `json:"state"`
	Pending int        `json:"pending"`
	Oldest  *time.Time `json:"oldest,omitempty"`
	Bytes   int64      `json:"bytes"`
	Error   string     `json:"error,omitempty"`
	// Quarantined is how many spooled records the log's database refused
	// and that were set aside in the spool's quarantine directory
	// (SpoolQuarantineDir) for an operator: kept, never in the log.
	Quarantined uint64 `json:"quarantined,omitempty"`
	// Counters since start.
	Appended   uint64 `json:"-"`
	Integrated uint64 `json:"-"`
	Errors     uint64 `json:"-"`
}

// SpoolStatus reports the spool's state: empty, integrating (records
// pending, the log away or being caught up with) or stuck.
func (l *SpoolingLog) SpoolStatus() SpoolStatus {
	st := l.spool.Stats()
	s := SpoolStatus{Replica: st.Replica, Pending: st.Pending, Bytes: st.Bytes, State: SpoolEmpty,
		Appended: l.appended.Load(), Integrated: l.integrated.Load(), Errors: l.failures.Load(), Quarantined: l.quarantined.Load()}
	if st.Pending > 0 {
		s.State = SpoolIntegrating
		oldest := st.Oldest.UTC()
		s.Oldest = &oldest
	}
	l.mu.Lock()
	stuck, lastErr := l.stuck, l.lastErr
	l.mu.Unlock()
	if st.Broken != nil {
		stuck, lastErr = true, st.Broken
	}
	if stuck && (st.Pending > 0 || st.Broken != nil) {
		s.State = SpoolStuck
	}
	if lastErr != nil && s.State != SpoolEmpty {
		s.Error = lastErr.Error()
	}
	return s
}

// Ready is nil unless the spool is stuck: a replica whose spool is merely
// waiting for the database still answers checks and stays in rotation.
func (l *SpoolingLog) Ready(context.Context) error {
	if s := l.SpoolStatus(); s.State == SpoolStuck {
		return fmt.Errorf("%w: %s", ErrSpoolStuck, s.Error)
	}
	return nil
}

// ReceiptSpooled is ReceiptView.State for a spooled record.
const ReceiptSpooled = "spooled"

func spooledReceipt(r evidence.Record) *ReceiptView {
	return &ReceiptView{State: ReceiptSpooled, RecordHash: hex.EncodeToString(r.Hash[:]), Promise: r.Promise}
}

// MarshalJSON leaves out the log position of a spooled record, which has
// none yet.
func (v ReceiptView) MarshalJSON() ([]byte, error) {
	type plain ReceiptView
	if v.State != ReceiptSpooled {
		return json.Marshal(plain(v))
	}
	return json.Marshal(struct {
		State      string            `json:"state"`
		RecordHash string            `json:"record_hash"`
		Promise    *evidence.Promise `json:"promise"`
	}{v.State, v.RecordHash, v.Promise})
}

// keyedCheck reports whether a check record was sent with an idempotency
// key: its facts say so, or, without them (a re-run as of a past time),
// its body names one.
func keyedCheck(r *evidence.Record) bool {
	if r.Check != nil {
		return r.Check.IdempotencyKey != ""
	}
	return bytes.Contains(r.Body, []byte(`"idempotency_key":`))
}
