package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/durable"
)

const screenUsage = `Usage: credgate screen FILE --action ACTION [--out RESULTS.ndjson|RESULTS.csv] [flags]
       credgate screen --job ID --out RESULTS [flags]     (re-attach to a job)

Screens every subject of FILE for ACTION as a job on the server (POST /v1/screenings): the
file is streamed up (CSV with an "id" column, or NDJSON {"id": "…"} a line; told apart by
the extension .csv / .ndjson / .jsonl, else by the first character), the job is followed
with a progress bar and an ETA on standard error, and the results (each subject's outcome,
measures, entries and proof) are written to --out (default FILE.results.ndjson; a .csv name
gives CSV). Beside them, OUT.receipt.json is the receipt of the job's record in the evidence
log: with it each answer of the results is provable offline; --receipts DIR writes a chained
receipt (credgate verify checks it) for every subject whose outcome is not clear.

Every downloaded row is checked before the results are kept: its outcome and subject (and
in CSV its measures and entries) must be those of the answer it carries, and the answers,
hashed in file order, must make the tree (size and root) the job's record names. Results
that do not are refused (exit 1, nothing written): they are not what the evidence proves.

While the job runs, OUT.job names it: if the command is interrupted (or the server is away)
after the upload, running the same command again re-attaches to the job instead of sending
the file again; --job ID re-attaches explicitly. A job that failed, whose results expired, or
that the server no longer has cannot be resumed: OUT.job is then removed (the message says
so), and running the same command again submits the file afresh.

--receipts DIR must be a new or empty directory, or hold receipts of this same screening
alone (a run re-attached to its job): DIR/*.json are then the hits of this file and no other.
A DIR holding another screening's receipts is refused before the file is sent.

Exit status: 0 the results are written in full and proven; 1 the file or the job was refused,
the job failed, expired or is gone, or its results do not match its tree (the message says
why); 2 usage, or a --receipts DIR holding another screening's receipts; 3 interrupted or the
server unreachable while the job was accepted: run the same command again to resume.
` + clientFlagsUsage + `  --action ACTION       the action every subject is checked for
  --out FILE            results file (.ndjson or .csv)
  --job ID              re-attach to a job already submitted
  --receipts DIR        write a chained receipt per subject whose outcome is not clear
  --poll D              how often to read the job's progress (default 1s)
--credentials FILE, when given, is the credential the job is submitted and followed with: it
wins over CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET, which are then ignored.
`

// exitResumable is the exit status of a screening interrupted after its
// job was accepted: running the command again resumes it.
const exitResumable = 3

// exitError is an error with its own exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// screenJobFile is what OUT.job holds: the job a run of the command
// submitted, so that the next run re-attaches to it.
type screenJobFile struct {
	ID     string `json:"id"`
	File   string `json:"file"`
	Action string `json:"action"`
	// ClientID is the credential that submitted the job (the only one,
	// with an administrator, that sees it).
	ClientID string `json:"client_id,omitempty"`
}

// errJobEnded: the job cannot be resumed (it failed, its results
// expired, or the server has no such job): the file must be submitted
// again.
var errJobEnded = errors.New("the screening cannot be resumed")

// exitUsage is the exit status of a command line to correct.
const exitUsage = 2

func screenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("screen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), screenUsage) }
	var cf clientFlags
	cf.register(fs)
	action := fs.String("action", "", "the action every subject is checked for")
	out := fs.String("out", "", "results file (.ndjson or .csv)")
	jobID := fs.String("job", "", "re-attach to this job")
	receipts := fs.String("receipts", "", "write a chained receipt per subject whose outcome is not clear into this directory")
	poll := fs.Duration("poll", time.Second, "how often to read the job's progress")
	// Flags may follow FILE: parse around it.
	var file string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		if file != "" {
			fs.Usage()
			return errUsage
		}
		file, rest = fs.Arg(0), fs.Args()[1:]
	}
	if (file == "" && *jobID == "") || (file != "" && *action == "") || *poll < 100*time.Millisecond {
		fs.Usage()
		return errUsage
	}
	if *out == "" {
		if file == "" {
			fmt.Fprintln(stderr, "--out is required with --job")
			return errUsage
		}
		*out = file + ".results.ndjson"
	}
	format := "ndjson"
	if strings.EqualFold(filepath.Ext(*out), ".csv") {
		format = "csv"
	}
	cl, err := cf.client()
	if err != nil {
		return err
	}
	s := &screening{cl: cl, out: *out, format: format, poll: *poll, stdout: stdout, stderr: stderr}
	return s.run(ctx, file, *action, *jobID, *receipts)
}

// screening is one run of the screen command.
type screening struct {
	cl     *client.Client
	out    string
	format string
	poll   time.Duration
	stdout io.Writer
	stderr io.Writer
}

func (s *screening) run(ctx context.Context, file, action, jobID, receipts string) error {
	jobPath := s.out + ".job"
	if jobID == "" {
		if b, err := os.ReadFile(jobPath); err == nil {
			var saved screenJobFile
			if json.Unmarshal(b, &saved) == nil && saved.ID != "" && saved.File == file && saved.Action == action {
				if saved.ClientID != "" && saved.ClientID != s.cl.ClientID() {
					return fmt.Errorf("%s names screening %s, submitted by %s, which this credential (%s) does not see: run the command with %s's credential to resume it, or remove %s to submit the file again",
						jobPath, saved.ID, saved.ClientID, s.cl.ClientID(), saved.ClientID, jobPath)
				}
				jobID = saved.ID
				fmt.Fprintf(s.stderr, "re-attaching to screening %s (from %s)\n", jobID, jobPath)
			}
		}
	}
	if receipts != "" {
		// Before anything is sent: a new job's receipts go where no other
		// screening's are.
		if err := checkReceiptsDir(receipts, jobID); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("--receipts: %w", err)}
		}
	}
	var job client.Screening
	fresh := jobID == ""
	if fresh {
		var err error
		if job, err = s.submit(ctx, file, action); err != nil {
			return err
		}
		b, _ := json.Marshal(screenJobFile{ID: job.ID, File: file, Action: action, ClientID: s.cl.ClientID()})
		if err := durable.WriteFile(filepath.Dir(jobPath), filepath.Base(jobPath), b); err != nil {
			return fmt.Errorf("screening %s accepted, but %s cannot be written (re-attach with --job %s): %w", job.ID, jobPath, job.ID, err)
		}
	} else {
		job = client.Screening{ID: jobID}
	}
	job, err := s.follow(ctx, job, fresh)
	if err != nil {
		return s.ended(jobPath, file, job.ID, err)
	}
	if err := s.download(ctx, job); err != nil {
		return s.ended(jobPath, file, job.ID, err)
	}
	if err := s.saveReceipt(ctx, job); err != nil {
		return err
	}
	written := 0
	if receipts != "" {
		if written, err = writeChainedReceipts(s.out, s.format, s.out+".receipt.json", receipts); err != nil {
			return fmt.Errorf("chained receipts: %w", err)
		}
	}
	_ = os.Remove(jobPath)
	fmt.Fprintf(s.stdout, "%s: %d subjects screened for %s: %s; results in %s, the job's receipt in %s (screening %s, root %s)\n",
		orName(file, job.ID), job.Total, job.Action, countsText(job.Counts), s.out, s.out+".receipt.json", job.ID, job.Root)
	if receipts != "" {
		fmt.Fprintf(s.stdout, "%d chained receipts in %s\n", written, receipts)
	}
	return nil
}

// ended completes the error of a job that cannot be resumed
// (errJobEnded): OUT.job, when it names that job, is removed, so that
// the same command submits the file again rather than re-attach to the
// job for ever. Any other error is returned as it is.
func (s *screening) ended(jobPath, file, id string, err error) error {
	if !errors.Is(err, errJobEnded) {
		return err
	}
	again := "run the same command again to submit the file afresh"
	if file == "" {
		again = "submit the file again with credgate screen FILE --action ACTION"
	}
	b, rerr := os.ReadFile(jobPath)
	var saved screenJobFile
	if rerr != nil || json.Unmarshal(b, &saved) != nil || saved.ID != id || (saved.ClientID != "" && saved.ClientID != s.cl.ClientID()) {
		return fmt.Errorf("%w: %s", err, again)
	}
	if rerr := os.Remove(jobPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("%w; %s, which names it, cannot be removed (%w): remove it and submit the file again", err, jobPath, rerr)
	}
	return fmt.Errorf("%w; %s removed: %s", err, jobPath, again)
}

func orName(file, id string) string {
	if file != "" {
		return file
	}
	return id
}

func countsText(c map[string]int64) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	if len(parts) == 0 {
		return "no answers"
	}
	return strings.Join(parts, ", ")
}

// resumable wraps an error met after the job was accepted: the job goes on
// on the server, and the same command re-attaches to it.
func (s *screening) resumable(id string, err error) error {
	return &exitError{code: exitResumable, err: fmt.Errorf("%w; screening %s goes on on the server: run the same command again (or --job %s --out %s) to resume",
		unreachable(s.cl.BaseURL(), err), id, id, s.out)}
}

// contentTypeOf tells CSV from NDJSON by the file's extension, else by its
// first character.
func contentTypeOf(path string, f *os.File) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "text/csv", nil
	case ".ndjson", ".jsonl":
		return "application/x-ndjson", nil
	}
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if b := bytes.TrimLeft(bytes.TrimPrefix(head[:n], []byte("\ufeff")), " \t\r\n"); len(b) > 0 && b[0] == '{' {
		return "application/x-ndjson", nil
	}
	return "text/csv", nil
}

// submit streams the file up with a progress bar over its bytes.
func (s *screening) submit(ctx context.Context, path, action string) (client.Screening, error) {
	f, err := os.Open(path)
	if err != nil {
		return client.Screening{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return client.Screening{}, err
	}
	ct, err := contentTypeOf(path, f)
	if err != nil {
		return client.Screening{}, err
	}
	p := newProgress(s.stderr, st.Size(), "upload", "bytes")
	job, err := s.cl.SubmitScreening(ctx, action, ct, &countingReader{r: bufio.NewReaderSize(f, 256<<10), p: p}, st.Size())
	p.done()
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) {
			var b strings.Builder
			fmt.Fprintf(&b, "%s refused: %s", path, refusalText(e, time.Now()))
			for i, l := range e.Lines {
				if i == 10 {
					fmt.Fprintf(&b, "\n  … %d more", len(e.Lines)-i)
					break
				}
				fmt.Fprintf(&b, "\n  %s:%d: %s", path, l.Line, l.Detail)
			}
			return client.Screening{}, errors.New(b.String())
		}
		return client.Screening{}, unreachable(s.cl.BaseURL(), err)
	}
	fmt.Fprintf(s.stderr, "screening %s accepted: %d subjects for %s\n", job.ID, job.Total, action)
	return job, nil
}

// refusalText is a refusal of the file as the bank reads it: a quota
// refusal (429 rate_limited) says when the file may be sent again, as a
// time and a wait, beside what the server says of the quota, rather than
// "wait Retry-After seconds".
func refusalText(e *client.Error, now time.Time) string {
	msg := e.Error()
	if e.Status != http.StatusTooManyRequests || e.Code != "rate_limited" {
		return msg
	}
	msg = strings.TrimSpace(strings.Replace(msg, "; wait Retry-After seconds", "", 1))
	if e.RetryAfter <= 0 {
		return msg + "; retry later"
	}
	// Rounded up to the minute: the time said is never early.
	at := now.Add(e.RetryAfter).UTC()
	if m := at.Truncate(time.Minute); !m.Equal(at) {
		at = m.Add(time.Minute)
	}
	return fmt.Sprintf("%s; retry after %s, in %s", msg, at.Format("2006-01-02T15:04Z"), waitText(at.Sub(now)))
}

// waitText is a wait in hours and minutes, rounded up to the minute:
// "23 h 49 min", "5 min".
func waitText(d time.Duration) string {
	mins := int64((d + time.Minute - 1) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	if mins < 60 {
		return fmt.Sprintf("%d min", mins)
	}
	return fmt.Sprintf("%d h %d min", mins/60, mins%60)
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.set(c.n)
	return n, err
}

// follow reads the job's progress until it is done, with a progress bar
// over its subjects. A failed job, or one the server does not have, is
// errJobEnded (exit 1); the server away for longer than a few minutes, or
// an interrupt, is exit 3 (resumable). fresh says the job was submitted
// by this run (the progress's rate counts from its acceptance); else the
// progress counts only what is screened while this run follows the job,
// and a job already finished at the first look shows none.
func (s *screening) follow(ctx context.Context, job client.Screening, fresh bool) (client.Screening, error) {
	var p *progress
	defer func() {
		if p != nil {
			p.done()
		}
	}()
	accepted := time.Now()
	var away time.Time
	var base int64 // subjects screened before this run followed the job
	first, quiet := true, false
	for {
		j, err := s.cl.GetScreening(ctx, job.ID)
		switch {
		case err == nil:
			away = time.Time{}
			job = j
		case client.IsCode(err, "not_found"):
			return job, fmt.Errorf("%w: screening %s: no such job visible to this credential (it may have been removed at the end of its retention)", errJobEnded, job.ID)
		case ctx.Err() != nil:
			return job, s.resumable(job.ID, ctx.Err())
		default:
			var e *client.Error
			if errors.As(err, &e) && e.Status < 500 && e.Status != http.StatusTooManyRequests {
				return job, fmt.Errorf("screening %s: %w", job.ID, err)
			}
			// The server restarting, overloaded or away: the job resumes
			// there; keep asking for a while.
			if away.IsZero() {
				away = time.Now()
			} else if time.Since(away) > 3*time.Minute {
				return job, s.resumable(job.ID, err)
			}
		}
		if err == nil && first {
			first = false
			if !fresh {
				base = job.Done
				if quiet = job.Finished(); quiet {
					// Nothing is screened while this run looks: no bar,
					// and no rate of subjects over no time.
					fmt.Fprintf(s.stderr, "screening %s had finished (%s) before this run: %d of %d subjects screened\n", job.ID, job.State, job.Done, job.Total)
				}
			}
		}
		if p == nil && !first && !quiet && job.Total > 0 {
			what := "screen"
			if base > 0 {
				what = fmt.Sprintf("screen (%d of %d screened before this run)", base, job.Total)
			}
			p = newProgress(s.stderr, job.Total-base, what, "subjects")
			if fresh {
				p.start = accepted // the rate of the whole job, not since the first look
			}
		}
		if p != nil {
			p.set(max(job.Done-base, 0))
		}
		switch job.State {
		case "done":
			return job, nil
		case "failed":
			return job, fmt.Errorf("%w: screening %s failed: %s", errJobEnded, job.ID, job.Error)
		}
		select {
		case <-ctx.Done():
			return job, s.resumable(job.ID, ctx.Err())
		case <-time.After(s.poll):
		}
	}
}

// download writes the results to OUT, through OUT.partial renamed once
// complete, so that OUT is never a truncated file. Both are readable by
// their owner alone (createPrivate): they hold every subject's ID number
// and answer.
func (s *screening) download(ctx context.Context, job client.Screening) error {
	partial := s.out + ".partial"
	f, err := createPrivate(partial)
	if err != nil {
		return err
	}
	defer os.Remove(partial)
	defer f.Close()
	p := newProgress(s.stderr, job.Total, "results", "subjects")
	// Every row is held to the answer it carries, and the answers to the
	// tree the job's record names, as the download arrives (what the
	// server's disk holds is not evidence until it hashes to the recorded
	// root): checking is then not a second pass over a file of hundreds of
	// megabytes, and runs beside the server's sending.
	var size uint64
	if job.TreeSize != nil {
		size = *job.TreeSize
	}
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() {
		err := verifyResultsIn(pr, partial, s.format, job.Total, size, job.Root)
		pr.CloseWithError(err) // the download stops at the first refusal
		checked <- err
	}()
	lw := &lineCounter{w: bufio.NewWriterSize(io.MultiWriter(f, pw), 1<<20), p: p}
	if s.format == "csv" {
		lw.header = 1 // a line, not a subject
	}
	_, err = s.cl.ScreeningResults(ctx, job.ID, s.format, lw)
	if err == nil {
		err = lw.w.Flush()
	}
	pw.CloseWithError(err)
	verr := <-checked
	p.done()
	want := job.Total
	if s.format == "csv" {
		want++ // the header
	}
	// A body that ended early is a cut download (the same command
	// resumes it), not a refusal, whatever the check made of its end.
	cut := err == nil && lw.lines != want
	if verr != nil && !cut && (err == nil || errors.Is(verr, errResultsUnproven)) {
		return fmt.Errorf("results of screening %s refused: %w", job.ID, verr)
	}
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) && (e.Status == http.StatusGone || e.Code == "not_found") {
			return fmt.Errorf("%w: results of screening %s: %w", errJobEnded, job.ID, err)
		}
		if errors.As(err, &e) && e.Status < 500 {
			return fmt.Errorf("results of screening %s: %w", job.ID, err)
		}
		return s.resumable(job.ID, err)
	}
	if cut {
		return s.resumable(job.ID, fmt.Errorf("results of screening %s: %d lines, want %d (the download was cut)", job.ID, lw.lines, want))
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(partial, s.out)
}

// lineCounter counts the lines written through it, and reports those
// past the first header lines (a CSV's header) as subjects.
type lineCounter struct {
	w      *bufio.Writer
	p      *progress
	header int64
	lines  int64
}

func (l *lineCounter) Write(b []byte) (int, error) {
	l.lines += int64(bytes.Count(b, []byte{'\n'}))
	l.p.set(max(l.lines-l.header, 0))
	return l.w.Write(b)
}

// saveReceipt writes the receipt of the job's record beside the results.
func (s *screening) saveReceipt(ctx context.Context, job client.Screening) error {
	id := job.RecordID
	if id == "" {
		id = job.ID
	}
	b, err := s.cl.Receipt(ctx, id)
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) && e.Status < 500 {
			return fmt.Errorf("receipt of screening %s: %w", job.ID, err)
		}
		return s.resumable(job.ID, err)
	}
	// The results were checked against the job's root: the record the
	// receipt proves must name that same tree, or they prove nothing.
	_, tree, err := parseJobReceipt(b)
	if err == nil && (tree.ScreeningID != job.ID || tree.Root != job.Root || job.TreeSize == nil || tree.TreeSize != *job.TreeSize) {
		err = fmt.Errorf("%w: the job's record names screening %q, a tree of %d answers with root %s; the job, root %s",
			errResultsUnproven, tree.ScreeningID, tree.TreeSize, tree.Root, job.Root)
	}
	if err != nil {
		_ = os.Remove(s.out)
		return fmt.Errorf("receipt of screening %s refused (%s removed): %w", job.ID, s.out, err)
	}
	return durable.WriteFile(filepath.Dir(s.out), filepath.Base(s.out)+".receipt.json", b)
}

// createPrivate creates path for writing with mode 0600, readable by its
// owner alone whatever the umask (which can only take bits away), as the
// files of --receipts are: the command's files hold subjects' ID numbers
// (personal information under the PIPL) and what the lists say of them.
// A file already there (a run's leftover, a copy made under another
// mode) is removed first rather than truncated: truncating would keep its
// mode, and its inode open to whoever holds it open.
func createPrivate(path string) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}
