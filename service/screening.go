package service

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Errors of screening jobs.
var (
	// ErrScreeningRejected: the file is malformed (ScreeningFileError
	// lists the lines); nothing was queued.
	ErrScreeningRejected = errors.New("screening file rejected")
	// ErrScreeningTooLarge: more than MaxScreeningSubjects subjects.
	ErrScreeningTooLarge = errors.New("screening too large")
	// ErrScreeningNotDone: the job's results are not ready.
	ErrScreeningNotDone = errors.New("screening not done")
	// ErrTooManyScreenings: the partner has as many unfinished jobs as it
	// may (or the server a full backlog); nothing was read or queued.
	ErrTooManyScreenings = errors.New("too many unfinished screenings")
	// ErrScreeningLeaseLost: another runner holds the job's lease (this
	// one's ended unrenewed); the store took nothing of this runner's.
	ErrScreeningLeaseLost = errors.New("screening lease lost")
)

// Limits of screening jobs.
const (
	// MaxScreeningSubjects caps one file, enforced while it streams in.
	MaxScreeningSubjects = 10_000_000
	// maxScreeningErrors caps the malformed lines reported for a file.
	maxScreeningErrors = 100
	// screeningBatch subjects are decided, written and made durable at a
	// time; a restart resumes after the last durable batch.
	screeningBatch = 2000
	// DefaultMaxUnfinishedScreenings is how many jobs a partner may have
	// queued, running or uploading at once: jobs run one at a time for the
	// whole server, so one partner's backlog delays everyone's.
	DefaultMaxUnfinishedScreenings = 2
	// maxScreeningBacklog bounds the unfinished jobs read to count a
	// partner's; a server with that many refuses new ones.
	maxScreeningBacklog = 1000
	// DefaultScreeningLease is how long a runner's claim on a job lasts
	// unrenewed: the wait before another replica resumes the job of one
	// that died. The runner renews it before each batch and every third of
	// it meanwhile.
	DefaultScreeningLease = 30 * time.Second
	// screeningClaimScan is how many claimable jobs Run reads at a time:
	// more than one, so that jobs whose files this replica cannot see do
	// not hide the next ones.
	screeningClaimScan = 50
)

// KindScreening is the evidence record of a screening job: its answers'
// tree root.
const KindScreening = evidence.KindScreening

// ScreeningState is where a job is.
type ScreeningState string

// Screening states.
const (
	ScreeningQueued  ScreeningState = "queued"
	ScreeningRunning ScreeningState = "running"
	ScreeningDone    ScreeningState = "done"
	ScreeningFailed  ScreeningState = "failed"
)

// ScreeningJob is a file of subjects checked for one action.
type ScreeningJob struct {
	ID      string
	Partner string
	// Caller is the partner's scope when it submitted the job: every
	// subject is decided as a check of that caller would be, within the
	// partner's scope as it is at each batch (narrowedTo,
	// mayStillCheckKind).
	Caller Caller
	Action string
	Format ImportFormat
	State  ScreeningState
	// Disclosed is what the job's answers so far disclose, kept with its
	// progress: its results are served only while the partner's scope
	// covers it. Nil on a job stored before it was kept (disclosure).
	Disclosed *ScreeningDisclosure
	// Total is the subjects in the file; Done those screened, whose results
	// are durable in ResultsBytes bytes of the results file.
	Total        int64
	Done         int64
	ResultsBytes int64
	// Counts are the answers by outcome, and "invalid" subjects.
	Counts map[string]int64
	// TreeSize and Root are the answers' Merkle tree, recorded as evidence
	// record RecordID (the job's id) when the job is done.
	TreeSize  uint64
	Root      string
	RecordID  string
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Runner is the process holding the job's lease until LeaseUntil (""
	// and zero: no one): only it runs the job, and the store takes the
	// job's progress from it alone (UpdateScreening).
	Runner     string
	LeaseUntil time.Time
}

// ScreeningDisclosure is what a job's answers disclose: the widest
// visibility any of them was encoded at ("" while none was answered) and
// the kinds of the subjects answered.
type ScreeningDisclosure struct {
	Visibility Visibility           `json:"visibility,omitempty"`
	Kinds      []policy.SubjectKind `json:"kinds,omitempty"`
}

// add counts an answer about a subject of kind k encoded for c.
func (d *ScreeningDisclosure) add(k policy.SubjectKind, c Caller) {
	if !slices.Contains(d.Kinds, k) {
		d.Kinds = append(d.Kinds, k)
		slices.Sort(d.Kinds)
	}
	if v := c.effectiveVisibility(); d.Visibility != VisibilityFull {
		d.Visibility = v
	}
}

// disclosure is what j's answers disclose: as recorded, or, for a job
// stored before it was recorded, as much as its caller could be shown.
func (j ScreeningJob) disclosure() ScreeningDisclosure {
	if j.Disclosed != nil {
		return *j.Disclosed
	}
	d := ScreeningDisclosure{Visibility: j.Caller.effectiveVisibility()}
	for _, k := range []policy.SubjectKind{policy.KindOrganization, policy.KindPerson} {
		if j.Caller.mayCheckKind(k) {
			d.Kinds = append(d.Kinds, k)
		}
	}
	return d
}

// coveredBy is ErrScopeNarrowed when caller, as it is now, may not be
// shown what j's answers disclose: it may no longer check j's action, or
// a kind of subject answered, or its visibility is narrower than an
// answer's. Administrators and auditors see every job in full.
func (j ScreeningJob) coveredBy(caller Caller) error {
	if caller.Role != RolePartner {
		return nil
	}
	if !caller.mayCheck(j.Action) {
		return fmt.Errorf("screening %s: %w: it may no longer check action %q", j.ID, ErrScopeNarrowed, j.Action)
	}
	d := j.disclosure()
	for _, k := range d.Kinds {
		if !caller.mayCheckKind(k) {
			return fmt.Errorf("screening %s: %w: its results answer about subjects of kind %s, which it may no longer check", j.ID, ErrScopeNarrowed, k)
		}
	}
	if d.Visibility == VisibilityFull && caller.effectiveVisibility() != VisibilityFull {
		return fmt.Errorf("screening %s: %w: its results were answered at visibility full, it now has %s", j.ID, ErrScopeNarrowed, caller.effectiveVisibility())
	}
	return nil
}

// ScreeningStore keeps screening jobs' durable state. Replicas sharing
// a store run each job once: a runner claims a job's lease before it runs
// it (ClaimScreening), and the store takes the job's progress only from
// the lease's holder.
type ScreeningStore interface {
	InsertScreening(ctx context.Context, j ScreeningJob) error
	// UpdateScreening rewrites a job's progress, disclosure and state
	// (not its lease), only while j.Runner holds its lease ("": while no one
	// does): else ErrScreeningLeaseLost, and ErrNotFound when there is
	// no such job.
	UpdateScreening(ctx context.Context, j ScreeningJob) error
	// GetScreening returns ErrNotFound when there is no such job.
	GetScreening(ctx context.Context, id string) (ScreeningJob, error)
	// UnfinishedScreenings lists up to limit jobs queued or running,
	// oldest first.
	UnfinishedScreenings(ctx context.Context, limit int) ([]ScreeningJob, error)
	// ClaimableScreenings lists up to limit jobs queued or running whose
	// lease is free or ended by now, oldest first.
	ClaimableScreenings(ctx context.Context, now time.Time, limit int) ([]ScreeningJob, error)
	// ClaimScreening takes job id's lease for runner until now+lease, or
	// renews runner's own. It is granted (true) only while the job is
	// queued or running and its lease is free, runner's, or ended by now:
	// of two claims at once, one is refused.
	ClaimScreening(ctx context.Context, id, runner string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseScreening frees job id's lease if runner holds it.
	ReleaseScreening(ctx context.Context, id, runner string) error
	// TouchScreening says that a live replica has unfinished job id's
	// files: a lease ended or free by now is freed and its end set to now
	// (claimable at once, as a free lease is); a held one is left.
	TouchScreening(ctx context.Context, id string, now time.Time) error
	// FailOrphanedScreening ends unfinished job id as failed with reason
	// (as its error) at now, only if it was created, changed, leased and
	// touched at or before quiet, in one conditional write: a claim or a
	// touch at the same moment either keeps it from failing or is refused.
	// It reports whether the job was failed, and clears its lease.
	FailOrphanedScreening(ctx context.Context, id string, quiet, now time.Time, reason string) (bool, error)
}

// ScreeningFileError lists the malformed lines of a screening file.
type ScreeningFileError struct {
	Lines []LineError
}

func (e *ScreeningFileError) Error() string {
	return fmt.Sprintf("%v: %d bad lines", ErrScreeningRejected, len(e.Lines))
}

// Unwrap lets errors.Is find ErrScreeningRejected.
func (e *ScreeningFileError) Unwrap() error { return ErrScreeningRejected }

// Screenings runs screening jobs: every subject of a file is decided as a
// single check is (Checker.decide, the same code), its answer written to
// the job's results in the data dir, and the answers form a Merkle tree
// whose root is one evidence record. The files are in dir/ID/: input (one
// subject a line), results (NDJSON, one line per subject), tree/ (the
// answers' tree). The job's progress is in the store, so a restarted
// server resumes it from its last durable batch.
//
// Replicas sharing a store must share dir (store.screenings_dir): any of
// them may run a job, under a lease in the store, and serve its results.
// A replica that cannot see a job's files leaves the job to one that can.
type Screenings struct {
	checker *Checker
	store   ScreeningStore
	dir     string
	now     func() time.Time
	wake    chan struct{}
	// batch, when set, reads each batch's entries in one round trip.
	batch EntryBatchLookup
	// retention is how long a finished job's files are kept.
	retention time.Duration
	// partners, when set, is read before a job starts, before each batch
	// and before its record: a revoked partner's job stops, and so does
	// one whose partner may no longer check its action; the others go on
	// within the partner's current scope.
	partners ScreeningPartners
	// maxUnfinished caps a partner's jobs queued, running or uploading.
	maxUnfinished int
	// runner is this process's id in the jobs' leases, held for lease.
	runner string
	lease  time.Duration
	logger *slog.Logger
	// mu guards uploading: each partner's uploads not yet stored, which
	// count against maxUnfinished while they stream in; and unseen: the
	// jobs whose files this replica was found not to have (warned once).
	mu        sync.Mutex
	uploading map[string]int
	unseen    map[string]bool
}

// ScreeningPartners reads a job's partner, to stop the job once the
// partner is revoked and to keep it within the partner's current scope.
// Every Store is one.
type ScreeningPartners interface {
	PartnerByClientID(ctx context.Context, clientID string) (Partner, error)
}

// WithScreeningsPartners reads jobs' partners from p (default: the
// screening store, when it is a ScreeningPartners).
func WithScreeningsPartners(p ScreeningPartners) ScreeningsOption {
	return func(s *Screenings) { s.partners = p }
}

// WithScreeningsMaxUnfinished caps a partner's unfinished jobs (queued,
// running, or still uploading) at n (default
// DefaultMaxUnfinishedScreenings).
func WithScreeningsMaxUnfinished(n int) ScreeningsOption {
	return func(s *Screenings) {
		if n > 0 {
			s.maxUnfinished = n
		}
	}
}

// WithScreeningsLease sets how long a claim on a job lasts unrenewed
// (default DefaultScreeningLease).
func WithScreeningsLease(d time.Duration) ScreeningsOption {
	return func(s *Screenings) {
		if d > 0 {
			s.lease = d
		}
	}
}

// WithScreeningsLogger logs to l (default slog.Default()).
func WithScreeningsLogger(l *slog.Logger) ScreeningsOption {
	return func(s *Screenings) {
		if l != nil {
			s.logger = l
		}
	}
}

// ScreeningsOption configures Screenings.
type ScreeningsOption func(*Screenings)

// WithScreeningsClock sets the clock (tests).
func WithScreeningsClock(now func() time.Time) ScreeningsOption {
	return func(s *Screenings) { s.now = now }
}

// NewScreenings returns the screening service keeping its files in dir.
func NewScreenings(checker *Checker, store ScreeningStore, dir string, opts ...ScreeningsOption) *Screenings {
	s := &Screenings{checker: checker, store: store, dir: dir, now: time.Now, wake: make(chan struct{}, 1),
		retention: DefaultScreeningRetention, maxUnfinished: DefaultMaxUnfinishedScreenings, uploading: map[string]int{},
		runner: newRunnerID(), lease: DefaultScreeningLease, logger: slog.Default(), unseen: map[string]bool{}}
	if p, ok := store.(ScreeningPartners); ok {
		s.partners = p
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Submit streams a file of subjects (format ndjson: {"id": "…"} a line;
// csv: a header with an "id" column) into the job's input, validating
// each line's shape and counting at most MaxScreeningSubjects, and queues
// the job. Identifiers are validated when screened: a bad one is that
// subject's error in the results, as in a batch. A partner with
// maxUnfinished jobs unfinished is ErrTooManyScreenings before the body
// is read.
func (s *Screenings) Submit(ctx context.Context, caller Caller, action string, format ImportFormat, body io.Reader) (ScreeningJob, error) {
	return s.SubmitAdmitted(ctx, caller, action, format, body, nil)
}

// SubmitAdmitted is Submit with admit called once the file is on disk
// and its subjects counted, before the job is stored: the gateway charges
// the partner's quota one unit a subject there. An error from admit
// refuses the job and is returned as it is; the file is removed and
// nothing is stored.
func (s *Screenings) SubmitAdmitted(ctx context.Context, caller Caller, action string, format ImportFormat, body io.Reader,
	admit func(subjects int64) error) (ScreeningJob, error) {
	if err := s.checker.validate(caller, action, ""); err != nil {
		return ScreeningJob{}, err
	}
	release, err := s.reserve(ctx, caller.ClientID)
	if err != nil {
		return ScreeningJob{}, err
	}
	// Released once the job is stored (where the count finds it) or
	// refused.
	defer release()
	uid, err := uuid.NewV7()
	if err != nil {
		return ScreeningJob{}, err
	}
	id := "scr_" + strings.ReplaceAll(uid.String(), "-", "")
	dir := filepath.Join(s.dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ScreeningJob{}, fmt.Errorf("screening dir: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	total, err := writeScreeningInput(filepath.Join(dir, "input"), body, format)
	if err != nil {
		return ScreeningJob{}, err
	}
	if admit != nil {
		if err := admit(total); err != nil {
			return ScreeningJob{}, err
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	j := ScreeningJob{ID: id, Partner: caller.ClientID, Caller: caller, Action: action, Format: format,
		State: ScreeningQueued, Total: total, Counts: map[string]int64{}, Disclosed: &ScreeningDisclosure{},
		CreatedAt: now, UpdatedAt: now}
	if err := s.store.InsertScreening(ctx, j); err != nil {
		return ScreeningJob{}, fmt.Errorf("store screening: %w", err)
	}
	keep = true
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return j, nil
}

// reserve counts partner's unfinished jobs, stored and uploading, and
// holds a place for one more upload when there is room; release gives it
// back. Held from before the body is read, so that parallel uploads
// cannot each pass the count and spool gigabytes only to be refused.
func (s *Screenings) reserve(ctx context.Context, partner string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs, err := s.store.UnfinishedScreenings(ctx, maxScreeningBacklog)
	if err != nil {
		return nil, fmt.Errorf("count unfinished screenings: %w", err)
	}
	if len(jobs) >= maxScreeningBacklog {
		return nil, fmt.Errorf("%w: the server has %d or more screening jobs queued or running; submit again later",
			ErrTooManyScreenings, maxScreeningBacklog)
	}
	n := s.uploading[partner]
	now := s.now()
	for _, j := range jobs {
		if j.Partner == partner && s.holdsCap(j, now) {
			n++
		}
	}
	if n >= s.maxUnfinished {
		return nil, fmt.Errorf("%w: %d screening jobs of this partner are unfinished (queued, running or uploading), at most %d may be; submit again when one is done",
			ErrTooManyScreenings, n, s.maxUnfinished)
	}
	s.uploading[partner]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.uploading[partner]--; s.uploading[partner] <= 0 {
			delete(s.uploading, partner)
		}
	}, nil
}

// screeningOrphanLeases is how many leases a job whose files this replica
// cannot see may go unclaimed and unchanged before it stops counting
// toward its partner's cap of unfinished jobs (10 × 30 s: 5 minutes).
const screeningOrphanLeases = 10

// holdsCap reports whether unfinished job j counts toward its partner's
// cap. A job whose files no replica has (an upgrade that moved
// store.screenings_dir, a replica's volume lost) would stay queued or
// running forever and hold the cap with it. It is not failed here: its
// files may be on a replica that does not share this one's dir and is
// down for a while (SweepOrphans fails it later, once that is safe). It
// only stops counting once this replica cannot see its files and it has
// shown no sign of life (a claim, a renewal, a touch by a replica that
// has its files, progress, its submission) for screeningOrphanLeases
// leases. With a shared dir every live job's files are seen, so every
// one counts.
func (s *Screenings) holdsCap(j ScreeningJob, now time.Time) bool {
	if _, err := os.Stat(filepath.Join(s.dir, j.ID)); err == nil {
		return true
	}
	return aliveSince(j, now.Add(-screeningOrphanLeases*s.lease))
}

// aliveSince reports whether j showed a sign of life after since: its
// submission, a change of its progress, a lease held or renewed, or a
// replica that has its files touching it (TouchScreening).
func aliveSince(j ScreeningJob, since time.Time) bool {
	return j.LeaseUntil.After(since) || j.UpdatedAt.After(since) || j.CreatedAt.After(since)
}

// ndjsonLineError says why an NDJSON line is not a subject: a line with
// fields beside "id" (a bank's own reference, say) is named for the field,
// since bodies are decoded strictly and a CSV file is where other columns
// may ride along.
func ndjsonLineError(err error) error {
	if f, ok := strings.CutPrefix(fmt.Sprint(err), "json: unknown field "); ok {
		return fmt.Errorf(`unknown field %s: a line holds {"id": "…"} only (a CSV file may carry other columns beside id)`, f)
	}
	return errors.New(`not one JSON object {"id": "…"}`)
}

// writeScreeningInput copies the subjects of body into path, one a line,
// durably, and returns how many there are. The file holds persons'
// identity numbers: only credgate's user may read it.
func writeScreeningInput(path string, body io.Reader, format ImportFormat) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 256<<10)
	var (
		n   int64
		bad []LineError
	)
	add := func(line int, id string) error {
		id = strings.TrimSpace(id)
		if id == "" || len(id) > 64 || strings.ContainsAny(id, "\r\n") {
			bad = append(bad, LineError{Line: line, Err: errors.New("id is missing or longer than 64 bytes")})
			return nil
		}
		if n >= MaxScreeningSubjects {
			return fmt.Errorf("%w: more than %d subjects", ErrScreeningTooLarge, MaxScreeningSubjects)
		}
		n++
		w.WriteString(id)
		return w.WriteByte('\n')
	}
	switch format {
	case FormatNDJSON:
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 4096), 4096)
		line := 0
		for sc.Scan() && len(bad) < maxScreeningErrors {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\ufeff"))
			}
			if len(b) == 0 {
				continue
			}
			var in struct {
				ID string `json:"id"`
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil || dec.More() {
				bad = append(bad, LineError{Line: line, Err: ndjsonLineError(err)})
				continue
			}
			if err := add(line, in.ID); err != nil {
				return 0, err
			}
		}
		if err := sc.Err(); err != nil {
			if !errors.Is(err, bufio.ErrTooLong) {
				return 0, fmt.Errorf("read screening file: %w", err)
			}
			bad = append(bad, LineError{Line: line + 1, Err: errors.New("line longer than 4096 bytes")})
		}
	case FormatCSV:
		cr := newCSVReader(body)
		cr.ReuseRecord = true
		header, err := cr.Read()
		col := -1
		if err == nil {
			for i, h := range header {
				if strings.TrimSpace(h) == "id" {
					col = i
				}
			}
		}
		if col < 0 {
			return 0, &ScreeningFileError{Lines: []LineError{{Line: 1, Err: errors.New(`a header row naming an "id" column is required`)}}}
		}
		for len(bad) < maxScreeningErrors {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, LineError{Line: pe.StartLine, Err: pe.Err})
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					continue
				}
				break
			}
			if err != nil {
				return 0, fmt.Errorf("read screening file: %w", err)
			}
			line, _ := cr.FieldPos(0)
			if err := add(line, rec[col]); err != nil {
				return 0, err
			}
		}
	default:
		return 0, fmt.Errorf("%w: unknown format %q", ErrScreeningRejected, format)
	}
	if len(bad) > 0 {
		return 0, &ScreeningFileError{Lines: bad}
	}
	if n == 0 {
		return 0, &ScreeningFileError{Lines: []LineError{{Line: 0, Err: errors.New("no subjects")}}}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return n, f.Close()
}

// Get returns a job to the partner that submitted it, and to
// administrators and auditors; to anyone else it does not exist.
func (s *Screenings) Get(ctx context.Context, caller Caller, id string) (ScreeningJob, error) {
	if id == "" || len(id) > 64 {
		return ScreeningJob{}, fmt.Errorf("screening %q: %w", id, ErrNotFound)
	}
	j, err := s.store.GetScreening(ctx, id)
	if err != nil {
		return ScreeningJob{}, err
	}
	switch caller.Role {
	case RoleAdmin, RoleAuditor:
	default:
		if j.Partner != caller.ClientID {
			return ScreeningJob{}, fmt.Errorf("screening %q: %w", id, ErrNotFound)
		}
	}
	return j, nil
}

// newRunnerID is a process's id in the jobs' leases: its host, for the
// operator reading the store, and random bytes, unique to the process.
func newRunnerID() string {
	host, _ := os.Hostname()
	if len(host) > 64 {
		host = host[:64]
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return host + "/" + hex.EncodeToString(b[:])
}

// Run screens queued jobs one at a time, and resumes those left
// unfinished by a previous run or by a replica that stopped, until ctx
// ends; hourly, it deletes the files of jobs past their retention
// (Sweep). It runs a job only once it holds the job's lease, so that
// replicas sharing the store never run one job twice at once.
func (s *Screenings) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Apart from the jobs, which may each run for hours: a replica busy
	// with one must still say which others' files it has.
	wg.Go(func() { s.tendOrphans(ctx) })
	var swept time.Time
	for ctx.Err() == nil {
		if now := s.now(); now.Sub(swept) >= screeningSweepEvery {
			swept = now
			_, _ = s.Sweep(ctx) // retried at the next sweep
		}
		ran := false
		jobs, err := s.store.ClaimableScreenings(ctx, s.now(), screeningClaimScan)
		if err == nil {
			for _, j := range jobs {
				if ctx.Err() != nil {
					return
				}
				if s.claimAndRun(ctx, j) {
					ran = true
				}
			}
		}
		if ran {
			continue
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-time.After(time.Second):
		}
	}
}

// claimAndRun runs j if its files are in this replica's dir and its lease
// is won, holding the lease until the job stops; it reports whether it
// ran the job.
func (s *Screenings) claimAndRun(ctx context.Context, j ScreeningJob) bool {
	if !s.seesFiles(j.ID) {
		return false
	}
	ok, err := s.store.ClaimScreening(ctx, j.ID, s.runner, s.now(), s.lease)
	if err != nil || !ok {
		return false
	}
	defer func() {
		// Freed at once for the next run to claim, even when the job
		// stopped on an error to be retried; a crash leaves it to expire.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.store.ReleaseScreening(rctx, j.ID, s.runner)
	}()
	// Read again under the lease: the previous holder may have screened
	// more since j was listed.
	j, err = s.store.GetScreening(ctx, j.ID)
	if err != nil || j.Runner != s.runner || (j.State != ScreeningQueued && j.State != ScreeningRunning) {
		return false
	}
	jctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.keepLease(jctx, cancel, j.ID) })
	s.runJob(jctx, j)
	cancel()
	wg.Wait()
	return true
}

// keepLease renews the lease of job id every third of its length until
// ctx ends, so that a long batch or the building of a large tree does not
// let it lapse; once another runner holds it, it calls lost (the job's
// cancel).
func (s *Screenings) keepLease(ctx context.Context, lost context.CancelFunc, id string) {
	t := time.NewTicker(max(s.lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// An error is retried at the next tick; the store refuses the
		// job's progress if the lease lapses meanwhile.
		if err := s.renewLease(ctx, id); errors.Is(err, ErrScreeningLeaseLost) {
			s.logger.Warn("a screening job's lease was lost; another replica resumes it", "screening", id)
			lost()
			return
		}
	}
}

// renewLease extends this runner's lease of job id, or is
// ErrScreeningLeaseLost when another runner holds it (or the job ended).
func (s *Screenings) renewLease(ctx context.Context, id string) error {
	ok, err := s.store.ClaimScreening(ctx, id, s.runner, s.now(), s.lease)
	if err != nil {
		return fmt.Errorf("screening %s: renew its lease: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("screening %s: %w", id, ErrScreeningLeaseLost)
	}
	return nil
}

// seesFiles reports whether job id's directory is in this replica's dir.
// A job accepted by a replica whose dir this one does not share is left
// to that replica, never failed: the operator is warned, once per job,
// that store.screenings_dir is not shared. (A job whose directory is here
// but whose files are not fails, in runJob: no replica has them.)
func (s *Screenings) seesFiles(id string) bool {
	_, err := os.Stat(filepath.Join(s.dir, id))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.unseen, id)
		return true
	}
	if !s.unseen[id] {
		if len(s.unseen) >= maxScreeningBacklog {
			clear(s.unseen) // a job warned of again, rather than unbounded memory
		}
		s.unseen[id] = true
		s.logger.Warn("a screening job's files are not in this replica's store.screenings_dir; the job is left to a replica that has them. "+
			"Replicas that share a database must share one store.screenings_dir (a ReadWriteMany volume)",
			"screening", id, "store.screenings_dir", s.dir, "error", err)
	}
	return false
}

// runJob screens j and records the result; an error that is not the
// job's (the store or the log unavailable, shutdown) leaves it to be
// resumed.
func (s *Screenings) runJob(ctx context.Context, j ScreeningJob) {
	// Before it starts (a queued job of a partner revoked since), before
	// each batch (screen) and before its record is written: the job
	// answers for its partner as checks would, and a revoked partner's
	// checks are refused, as are those of an action its scope no longer
	// has.
	now, err := s.partnerScope(ctx, j)
	if err == nil {
		err = s.screen(ctx, &j, now)
	}
	if err == nil {
		_, err = s.partnerScope(ctx, j)
	}
	if err == nil {
		err = s.finish(ctx, &j)
	}
	if errors.Is(err, ErrScreeningLeaseLost) {
		// Another runner took the job over (this one's lease lapsed): it
		// resumes from the last batch the store took.
		s.logger.Warn("a screening job's lease was lost; another replica resumes it", "screening", j.ID)
		return
	}
	if errors.Is(err, ErrPartnerRevoked) || errors.Is(err, ErrScopeNarrowed) {
		if err = s.stopUnentitled(ctx, j, err); err != nil {
			// Stopped again on the next pass of Run.
			pause(ctx)
		}
		return
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	var fileErr *os.PathError
	if errors.As(err, &fileErr) {
		// The job's own files are gone or unreadable: it cannot complete.
		j.State, j.Error, j.UpdatedAt = ScreeningFailed, "the job's files are unreadable", s.now().UTC()
		_ = s.store.UpdateScreening(context.WithoutCancel(ctx), j)
		return
	}
	// Retried on the next pass of Run, after a pause.
	pause(ctx)
}

// pause waits a second before a job is tried again, or until ctx ends.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

// partnerScope returns j's partner's scope as it is now: ErrPartnerRevoked
// when the partner is no longer active, ErrScopeNarrowed when it may no
// longer check j's action (a check of it would be refused). It reads the
// store, not a cache: one read a batch of screeningBatch subjects. A
// partner the store does not know is not one that was revoked (partners
// are never deleted: only callers made up outside the registry, in
// tests, have none), so its job runs on, as submitted.
func (s *Screenings) partnerScope(ctx context.Context, j ScreeningJob) (Caller, error) {
	if s.partners == nil {
		return j.Caller, nil
	}
	p, err := s.partners.PartnerByClientID(ctx, j.Partner)
	switch {
	case errors.Is(err, ErrNotFound):
		return j.Caller, nil
	case err != nil:
		// Not the job's fault: it is retried (runJob).
		return Caller{}, fmt.Errorf("screening %s: read its partner: %w", j.ID, err)
	case p.Status != PartnerActive:
		return Caller{}, fmt.Errorf("screening %s: %w", j.ID, ErrPartnerRevoked)
	}
	now := CallerOf(p)
	if !now.mayCheck(j.Action) {
		return Caller{}, fmt.Errorf("screening %s: %w: it may no longer check action %q", j.ID, ErrScopeNarrowed, j.Action)
	}
	return now, nil
}

// stopUnentitled ends as failed the job of a partner revoked, or no
// longer entitled to its action (why: ErrPartnerRevoked or
// ErrScopeNarrowed), and deletes its files: the answers screened so far
// were for a partner that may no longer have them, so they are neither
// recorded nor served. The job is failed first: a replica runs only jobs
// whose files it sees, so files deleted first would leave, after a crash
// between, an unfinished job no replica stops; files left instead are a
// failed job's, never served and deleted by Sweep at the end of their
// retention.
func (s *Screenings) stopUnentitled(ctx context.Context, j ScreeningJob, why error) error {
	cause := "the partner was revoked"
	if !errors.Is(why, ErrPartnerRevoked) {
		cause = fmt.Sprintf("the partner's scope was narrowed: it may no longer check action %s", j.Action)
	}
	j.State, j.UpdatedAt = ScreeningFailed, s.now().UTC()
	j.Error = fmt.Sprintf("%s: the job stopped after %d of %d subjects and their answers were discarded", cause, j.Done, j.Total)
	if err := s.store.UpdateScreening(context.WithoutCancel(ctx), j); err != nil {
		return fmt.Errorf("stop the screening of a partner no longer entitled to it: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, j.ID)); err != nil {
		return fmt.Errorf("remove the screening of a partner no longer entitled to it: %w", err)
	}
	return nil
}

// screenedLine is one line of a job's results file.
type screenedLine struct {
	Line      int64           `json:"line"`
	SubjectID string          `json:"subject_id"`
	Outcome   string          `json:"outcome,omitempty"`
	Answer    json.RawMessage `json:"answer,omitempty"`
	Error     *screenedError  `json:"error,omitempty"`
}

type screenedError struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// screen decides every subject not yet done, batch by batch, each batch
// written durably before the job's progress says so; now is the
// partner's scope before the first batch, read again before each other.
func (s *Screenings) screen(ctx context.Context, j *ScreeningJob, now Caller) error {
	dir := filepath.Join(s.dir, j.ID)
	in, err := os.Open(filepath.Join(dir, "input"))
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(dir, "results"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	// What lies past the last durable batch was never counted: cut it.
	if err := out.Truncate(j.ResultsBytes); err != nil {
		return err
	}
	if _, err := out.Seek(j.ResultsBytes, io.SeekStart); err != nil {
		return err
	}
	// The answers' leaf hashes, 32 bytes each, durable with their batch:
	// the tree is built from them, not by reading the answers again.
	lf, err := os.OpenFile(filepath.Join(dir, "leaves"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := truncateLeaves(lf, j); err != nil {
		return err
	}
	p, err := s.checker.params(j.Caller, j.Action, "", nil, nil, policy.CheckContext{})
	if err != nil {
		return err
	}
	if j.State != ScreeningRunning {
		j.State, j.UpdatedAt = ScreeningRunning, s.now().UTC()
		if err := s.store.UpdateScreening(ctx, *j); err != nil {
			return err
		}
	}
	if j.Counts == nil {
		j.Counts = map[string]int64{}
	}
	if j.Disclosed == nil {
		// Stored before disclosures were kept: what it answered before
		// is counted as much as its caller could be shown.
		d := ScreeningDisclosure{}
		if j.Done > 0 {
			d = j.disclosure()
		}
		j.Disclosed = &d
	}
	br := bufio.NewReaderSize(in, 256<<10)
	for skip := j.Done; skip > 0; skip-- {
		if _, err := br.ReadSlice('\n'); err != nil {
			return fmt.Errorf("input shorter than its progress: %w", err)
		}
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	lw := bufio.NewWriterSize(lf, 64<<10)
	ids := make([]string, 0, screeningBatch)
	lines := make([][]byte, screeningBatch)
	leaves := make([][evidence.HashSize]byte, screeningBatch)
	answered := make([]bool, screeningBatch)
	for first := true; j.Done < j.Total; first = false {
		if !first {
			// Revoked or narrowed since the last batch (runJob read it
			// before the first).
			if now, err = s.partnerScope(ctx, *j); err != nil {
				return err
			}
		}
		ids = ids[:0]
		for len(ids) < screeningBatch {
			b, err := br.ReadSlice('\n')
			if errors.Is(err, io.EOF) && len(b) == 0 {
				break
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			ids = append(ids, string(bytes.TrimSuffix(b, []byte{'\n'})))
		}
		if len(ids) == 0 {
			return fmt.Errorf("input ends at %d of %d subjects", j.Done, j.Total)
		}
		if err := s.decideBatch(ctx, j, now, p, ids, lines[:len(ids)], leaves, answered); err != nil {
			return err
		}
		// Still the lease's holder, just before the files are written: a
		// runner that lost it must not write over its successor's.
		if err := s.renewLease(ctx, j.ID); err != nil {
			return err
		}
		var n int64
		for i, l := range lines[:len(ids)] {
			k, _ := bw.Write(l)
			n += int64(k)
			if answered[i] {
				lw.Write(leaves[i][:])
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := lw.Flush(); err != nil {
			return err
		}
		if err := out.Sync(); err != nil {
			return err
		}
		if err := lf.Sync(); err != nil {
			return err
		}
		j.Done += int64(len(ids))
		j.ResultsBytes += n
		j.UpdatedAt = s.now().UTC()
		if err := s.store.UpdateScreening(ctx, *j); err != nil {
			return err
		}
	}
	return nil
}

// truncateLeaves cuts the leaves file to the answers of the durable
// batches (what lies past them was never counted) and seeks to its end.
func truncateLeaves(lf *os.File, j *ScreeningJob) error {
	want := (j.Done - j.Counts["invalid"]) * evidence.HashSize
	if size := fileSize(lf); size > want {
		if err := lf.Truncate(want); err != nil {
			return err
		}
	}
	_, err := lf.Seek(0, io.SeekEnd)
	return err
}

func fileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return -1
	}
	return st.Size()
}

// decideBatch decides ids (lines j.Done+1 …) concurrently, as
// CheckBatch does, and encodes each one's results line into lines and the
// leaf hash of each answer into leaves (answered[i] says which have one).
// With a batch lookup, the batch's entries are read in one round trip.
// Each subject is decided for the job's caller within now, its partner's
// scope as it is: a kind of subject now refused is the error a batch
// check gives, and answers are encoded at now's visibility if narrower.
func (s *Screenings) decideBatch(ctx context.Context, j *ScreeningJob, now Caller, p checkParams, ids []string, lines [][]byte,
	leaves [][evidence.HashSize]byte, answered []bool) error {
	caller := narrowedTo(j.Caller, now)
	subjects := make([]policy.SubjectID, len(ids))
	bad := make([]error, len(ids))
	valid := make([]string, 0, len(ids))
	for i, id := range ids {
		subject, err := policy.ParseSubjectID(id)
		if err == nil && !mayStillCheckKind(j.Caller, now, subject.Kind) {
			err = fmt.Errorf("%w: %s", ErrSubjectKindNotAllowed, subject.Kind)
		}
		subjects[i], bad[i] = subject, err
		if err == nil {
			valid = append(valid, subject.Value)
		}
	}
	var found map[string]Lookup
	if s.batch != nil && p.past == nil && len(valid) > 0 {
		// Taken before the read, as a single check's lookup takes it.
		at := s.checker.now().UTC()
		var err error
		found, err = s.batch.LookupEntriesBatch(ctx, valid)
		switch {
		case errors.Is(err, ErrBatchLookupUnsupported):
			found = nil
		case err != nil:
			return fmt.Errorf("screen: look up entries: %w: %w", ErrDataUnavailable, err)
		default:
			for k, l := range found {
				if l.AsOf.IsZero() {
					l.AsOf = at
					found[k] = l
				}
			}
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	outcomes := make([]string, len(ids))
	next := make(chan int, len(ids))
	for i := range ids {
		next <- i
	}
	close(next)
	for range max(s.checker.fanout, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				line := j.Done + int64(i) + 1
				answered[i] = false
				if bad[i] != nil {
					l := screenedLine{Line: line, SubjectID: ids[i],
						Error: &screenedError{Code: screeningErrorCode(bad[i]), Detail: bad[i].Error()}}
					outcomes[i] = "invalid"
					b, err := json.Marshal(l)
					if err != nil {
						fail(err)
						continue
					}
					lines[i] = append(b, '\n')
					continue
				}
				var (
					ans  CheckAnswer
					derr error
				)
				if l, ok := found[subjects[i].Value]; ok {
					ans, _, derr = s.checker.decideFound(ctx, caller, subjects[i], p, l)
				} else {
					ans, _, derr = s.checker.decide(ctx, caller, subjects[i], p)
				}
				if derr != nil {
					fail(derr)
					continue
				}
				outcomes[i] = string(ans.Outcome)
				lines[i] = appendScreenedLine(lines[i][:0], line, subjects[i].Value, outcomes[i], ans.body)
				leaves[i] = evidence.HashLeaf(ans.body)
				answered[i] = true
			}
		}()
	}
	wg.Wait()
	if first != nil {
		// A lookup failure is not the subject's fault: the batch is
		// retried, not answered in part.
		return fmt.Errorf("screen: %w", first)
	}
	if j.Disclosed == nil {
		j.Disclosed = &ScreeningDisclosure{}
	}
	for i, o := range outcomes {
		j.Counts[o]++
		if answered[i] {
			j.Disclosed.add(subjects[i].Kind, caller)
		}
	}
	return nil
}

// appendScreenedLine encodes an answered subject's results line (as
// screenedLine would encode it) without re-validating the answer's JSON,
// which the checker has just encoded. Subject ids and outcomes are ASCII
// letters and digits, which need no escaping.
func appendScreenedLine(b []byte, line int64, subject, outcome string, answer []byte) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendInt(b, line, 10)
	b = append(b, `,"subject_id":"`...)
	b = append(b, subject...)
	b = append(b, `","outcome":"`...)
	b = append(b, outcome...)
	b = append(b, `","answer":`...)
	b = append(b, answer...)
	return append(b, "}\n"...)
}

func screeningErrorCode(err error) string {
	if errors.Is(err, ErrSubjectKindNotAllowed) {
		return "subject_kind_not_allowed"
	}
	return "invalid_subject_id"
}

// finish builds the answers' tree from the results, records its root as
// one evidence record, and marks the job done.
func (s *Screenings) finish(ctx context.Context, j *ScreeningJob) error {
	dir := filepath.Join(s.dir, j.ID)
	f, err := os.Open(filepath.Join(dir, "results"))
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := evidence.CreateFileTree(filepath.Join(dir, "tree"))
	if err != nil {
		return err
	}
	answers := j.Done - j.Counts["invalid"]
	if lf, err := os.Open(filepath.Join(dir, "leaves")); err == nil && fileSize(lf) == answers*evidence.HashSize {
		br := bufio.NewReaderSize(lf, 256<<10)
		var h [evidence.HashSize]byte
		for range answers {
			if _, err := io.ReadFull(br, h[:]); err != nil {
				lf.Close()
				return err
			}
			w.Append(h)
		}
		lf.Close()
	} else {
		if lf != nil {
			lf.Close()
		}
		// A job begun before leaves were kept: hash the answers again.
		if err := eachAnswer(io.LimitReader(f, j.ResultsBytes), func(l screenedLine) error {
			if l.Answer != nil {
				w.Append(evidence.HashLeaf(l.Answer))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	size, root, err := w.Finish()
	if err != nil {
		return err
	}
	now := s.now().UTC()
	body, err := json.Marshal(screeningRecord{ScreeningID: j.ID, Partner: j.Partner, Action: j.Action,
		Subjects: j.Total, Counts: j.Counts, TreeSize: size, Root: hex.EncodeToString(root[:]),
		CreatedAt: j.CreatedAt, FinishedAt: now, CatalogRevision: s.checker.catalog.Revision()})
	if err != nil {
		return err
	}
	rec := evidence.Record{ID: j.ID, Kind: KindScreening, Partner: j.Partner, At: now, Body: body}
	if _, err := s.checker.appendEvidence(ctx, rec); err != nil {
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("record screening: %w", err)
		}
		// Recorded before a restart: the stored record is the job's.
		stored, rerr := s.checker.records.Record(ctx, j.ID)
		if rerr != nil {
			return rerr
		}
		var r screeningRecord
		if err := json.Unmarshal(stored.Body, &r); err != nil || r.Root != hex.EncodeToString(root[:]) || r.TreeSize != size {
			j.State, j.Error = ScreeningFailed, "a different tree was recorded for this job"
			j.UpdatedAt = now
			return s.store.UpdateScreening(ctx, *j)
		}
	}
	j.State, j.TreeSize, j.Root, j.RecordID, j.UpdatedAt = ScreeningDone, size, hex.EncodeToString(root[:]), j.ID, now
	return s.store.UpdateScreening(ctx, *j)
}

// screeningRecord is the body of a screening job's evidence record.
type screeningRecord struct {
	ScreeningID     string           `json:"screening_id"`
	Partner         string           `json:"partner"`
	Action          string           `json:"action"`
	Subjects        int64            `json:"subjects"`
	Counts          map[string]int64 `json:"counts"`
	TreeSize        uint64           `json:"tree_size"`
	Root            string           `json:"root"`
	CatalogRevision string           `json:"catalog_revision"`
	CreatedAt       time.Time        `json:"created_at"`
	FinishedAt      time.Time        `json:"finished_at"`
}

// eachAnswer calls fn with every line of a results file.
func eachAnswer(r io.Reader, fn func(screenedLine) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An answer longer than the buffer: read the rest of it.
			full := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) > 0 {
			var l screenedLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return fmt.Errorf("%w: results: %w", ErrScreeningCorrupt, jerr)
			}
			if ferr := fn(l); ferr != nil {
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

// ScreenedAnswer is one subject's result as downloaded: its answer (the
// exact bytes hashed into the job's tree) and the proof of its inclusion
// under the root recorded in the evidence log, or its error.
type ScreenedAnswer struct {
	Line      int64           `json:"line"`
	SubjectID string          `json:"subject_id"`
	Outcome   policy.Outcome  `json:"outcome,omitempty"`
	Answer    json.RawMessage `json:"answer,omitempty"`
	LeafIndex *uint64         `json:"leaf_index,omitempty"`
	Proof     []string        `json:"proof,omitempty"`
	Error     *screenedError  `json:"error,omitempty"`
}

// ListColumns are a result's measures and entries as the CSV results
// give them, each list of ids joined with ";": what the gateway writes
// beside an answer and what credgate screen holds the row to.
func (a ScreenedAnswer) ListColumns() (measures, entries string, err error) {
	var lists struct {
		Measures []struct {
			ID string `json:"id"`
		} `json:"measures"`
		Entries []struct {
			ID string `json:"id"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(a.Answer, &lists); err != nil {
		return "", "", err
	}
	ms := make([]string, len(lists.Measures))
	for i, m := range lists.Measures {
		ms[i] = m.ID
	}
	es := make([]string, len(lists.Entries))
	for i, e := range lists.Entries {
		es[i] = e.ID
	}
	return strings.Join(ms, ";"), strings.Join(es, ";"), nil
}

// openResults finds caller's job id done and its results kept, and opens
// its answers' tree and its results file, for Results and ResultsNDJSON.
func (s *Screenings) openResults(ctx context.Context, caller Caller, id string) (ScreeningJob, *evidence.FileTree, *os.File, error) {
	j, err := s.Get(ctx, caller, id)
	if err != nil {
		return j, nil, nil, err
	}
	if j.State != ScreeningDone {
		return j, nil, nil, fmt.Errorf("%w: the job is %s", ErrScreeningNotDone, j.State)
	}
	// The stored answers are the ones the tree proves: a partner whose
	// scope no longer covers them gets none, rather than answers
	// re-rendered narrower than their proof.
	if err := j.coveredBy(caller); err != nil {
		return j, nil, nil, err
	}
	if err := s.resultsHere(j); err != nil {
		return j, nil, nil, err
	}
	dir := filepath.Join(s.dir, j.ID)
	tree, err := evidence.OpenFileTree(filepath.Join(dir, "tree"))
	if err != nil {
		return j, nil, nil, err
	}
	f, err := os.Open(filepath.Join(dir, "results"))
	if err != nil {
		tree.Close()
		return j, nil, nil, err
	}
	// A staff download is recorded before its first byte (reads.go).
	if err := s.recordResultsRead(ctx, caller, j); err != nil {
		tree.Close()
		f.Close()
		return j, nil, nil, err
	}
	return j, tree, f, nil
}

// Results calls fn with every subject's result, in file order, each
// answer with its proof of inclusion in the job's tree. Each result is
// checked against the tree the job's record names before fn sees it, and
// its outcome and subject are its answer's: a results file that does not
// agree is ErrScreeningCorrupt at its first disagreement (or at its end,
// when lines or answers are missing).
func (s *Screenings) Results(ctx context.Context, caller Caller, id string, fn func(ScreenedAnswer) error) (ScreeningJob, error) {
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
	if err := eachAnswer(io.LimitReader(f, j.ResultsBytes), func(l screenedLine) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		a, err := s.screenedAnswer(ctx, tree, v, l)
		if err != nil {
			return err
		}
		return fn(a)
	}); err != nil {
		return j, err
	}
	return j, v.end()
}

// screenedAnswer is a results line as downloaded, once v has checked it:
// an answer gets its subject and outcome from the answer itself, and its
// proof as the next leaf.
func (s *Screenings) screenedAnswer(ctx context.Context, tree *evidence.FileTree, v *resultsVerifier, l screenedLine) (ScreenedAnswer, error) {
	a := ScreenedAnswer{Line: l.Line, SubjectID: l.SubjectID, Answer: l.Answer, Error: l.Error}
	if l.Answer == nil {
		return a, v.errored(l.Line)
	}
	idx := v.leaf
	if idx >= v.j.TreeSize {
		// Past the tree: no proof to read; answered says why.
		_, err := v.answered(ctx, l.Line, l.SubjectID, l.Outcome, l.Answer)
		return a, err
	}
	p, err := evidence.InclusionProof(ctx, tree, idx, v.j.TreeSize)
	if err != nil {
		return a, err
	}
	// An outcome absent from the line (written before lines carried it)
	// is the answer's.
	facts, err := v.answered(ctx, l.Line, l.SubjectID, l.Outcome, l.Answer)
	if err != nil {
		return a, err
	}
	a.SubjectID, a.Outcome = facts.Subject, policy.Outcome(facts.Outcome)
	a.Proof = make([]string, len(p))
	for i := range p {
		a.Proof[i] = hex.EncodeToString(p[i][:])
	}
	a.LeafIndex = &idx
	return a, nil
}

// VerifyScreenedAnswer checks offline that answer is leaf index of the
// tree of size whose root is root (hex), by its proof: the first of the
// two chained proofs (the second is the job record's receipt).
func VerifyScreenedAnswer(answer []byte, index, size uint64, proof []string, root string) error {
	r, err := hex.DecodeString(root)
	if err != nil || len(r) != evidence.HashSize {
		return fmt.Errorf("root %q is not a hex SHA-256", root)
	}
	p := make([][evidence.HashSize]byte, len(proof))
	for i, h := range proof {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != evidence.HashSize {
			return fmt.Errorf("proof hash %d is not a hex SHA-256", i)
		}
		p[i] = [evidence.HashSize]byte(b)
	}
	return evidence.VerifyInclusion(evidence.HashLeaf(answer), index, size, p, [evidence.HashSize]byte(r))
}
