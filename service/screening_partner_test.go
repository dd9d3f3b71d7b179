package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// revokeAtStore is the SQLite store that calls revoke once a job's
// progress reaches at subjects: a partner revoked between two batches.
type revokeAtStore struct {
	*sqlite.Store
	at     int64
	revoke func()
	once   sync.Once
}

func (s *revokeAtStore) UpdateScreening(ctx context.Context, j service.ScreeningJob) error {
	if err := s.Store.UpdateScreening(ctx, j); err != nil {
		return err
	}
	if j.Done >= s.at {
		s.once.Do(s.revoke)
	}
	return nil
}

// screeningPartner registers a partner allowed bank_credit and returns
// its caller.
func screeningPartner(t *testing.T, partners *service.Partners, name string) service.Caller {
	t.Helper()
	p, _, err := partners.Create(context.Background(), service.NewPartnerInput{Name: name, Role: service.RolePartner, Actions: []string{"bank_credit"}})
	if err != nil {
		t.Fatal(err)
	}
	return service.Caller{ClientID: p.ClientID, Role: p.Role, Actions: p.Actions}
}

// orgFile is an NDJSON file of n valid organisations.
func orgFile(t *testing.T, prefix string, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":%q}\n", testenv.USCC(t, fmt.Sprintf("91110108%s%07d", prefix, i)))
	}
	return b.Bytes()
}

// waitScreening waits for a job to be done or failed.
func waitScreening(t *testing.T, sc *service.Screenings, id string) service.ScreeningJob {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := sc.Get(context.Background(), admin, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == service.ScreeningDone || j.State == service.ScreeningFailed {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %+v", id, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// filesGone waits up to within for path not to exist.
func filesGone(path string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		_, err := os.Stat(path)
		switch {
		case os.IsNotExist(err):
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("still there after %s (stat: %v)", within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestScreeningStopsWhenItsPartnerIsRevoked: a partner revoked while its
// job runs stops it before the next batch, and one revoked while its job
// waits stops it before it starts. Either job ends failed saying why,
// with no evidence record, no results served and no files left; another
// partner's job is done as before.
func TestScreeningStopsWhenItsPartnerIsRevoked(t *testing.T) {
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	partners := service.NewPartners(w.store, cat, service.WithSecretCost(testenv.SecretCost()))
	running := screeningPartner(t, partners, "运行中被撤销的银行")
	queued := screeningPartner(t, partners, "排队中被撤销的银行")
	other := screeningPartner(t, partners, "另一家银行")
	ctx := context.Background()

	// Revoked once the running job's first batch (2000 subjects) is
	// durable; the file has one subject more.
	st := &revokeAtStore{Store: w.store, at: 2000}
	st.revoke = func() {
		if _, err := partners.Revoke(ctx, running.ClientID); err != nil {
			t.Error(err)
		}
	}
	dir := t.TempDir()
	sc := service.NewScreenings(w.checker, st, dir)
	first, err := sc.Submit(ctx, running, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "MK", 2001)))
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := sc.Submit(ctx, queued, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "ML", 3)))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := sc.Submit(ctx, other, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "MM", 3)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := partners.Revoke(ctx, queued.ClientID); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sc.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, c := range []struct {
		job  service.ScreeningJob
		done int64
	}{{first, 2000}, {waiting, 0}} {
		j := waitScreening(t, sc, c.job.ID)
		if j.State != service.ScreeningFailed || !strings.Contains(j.Error, "revoked") || j.Done != c.done || j.RecordID != "" {
			t.Errorf("job of a revoked partner: %+v, want failed after %d subjects", j, c.done)
		}
		if _, err := w.store.Record(ctx, j.ID); !errors.Is(err, evidence.ErrNotFound) {
			t.Errorf("job %s of a revoked partner has an evidence record: %v", j.ID, err)
		}
		if _, err := sc.ResultsNDJSON(ctx, admin, j.ID, io.Discard); !errors.Is(err, service.ErrScreeningNotDone) {
			t.Errorf("results of job %s of a revoked partner: %v", j.ID, err)
		}
		// The job is failed before its files go (stopUnentitled), so
		// they may still be there the moment it reads failed.
		if err := filesGone(filepath.Join(dir, j.ID), 10*time.Second); err != nil {
			t.Errorf("job %s of a revoked partner left its files: %v", j.ID, err)
		}
	}
	if j := waitScreening(t, sc, kept.ID); j.State != service.ScreeningDone || j.RecordID != kept.ID {
		t.Fatalf("the other partner's job: %+v", j)
	}
}

// TestScreeningRefusedAtAdmissionKeepsNothing: a job refused once its
// file is counted (the quota) leaves no job and no file, and admission
// sees the count of subjects.
func TestScreeningRefusedAtAdmissionKeepsNothing(t *testing.T) {
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	dir := t.TempDir()
	sc := service.NewScreenings(w.checker, w.store, dir)
	refused := errors.New("over the quota")
	var counted int64
	_, err := sc.SubmitAdmitted(context.Background(), admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "MN", 7)),
		func(n int64) error { counted = n; return refused })
	if !errors.Is(err, refused) || counted != 7 {
		t.Fatalf("admission saw %d subjects and Submit answered %v", counted, err)
	}
	if des, err := os.ReadDir(dir); err != nil || len(des) != 0 {
		t.Fatalf("a refused job left %d entries (%v)", len(des), err)
	}
	if un, err := w.store.UnfinishedScreenings(context.Background(), 10); err != nil || len(un) != 0 {
		t.Fatalf("a refused job was stored: %v %v", un, err)
	}
}

// TestScreeningUploadsCountAgainstTheCap: a file still streaming in
// counts as an unfinished job, so that parallel uploads cannot each pass
// the count; a submission past the cap is refused before its body is
// read.
func TestScreeningUploadsCountAgainstTheCap(t *testing.T) {
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	sc := service.NewScreenings(w.checker, w.store, t.TempDir(), service.WithScreeningsMaxUnfinished(2))
	ctx := context.Background()
	pr, pw := io.Pipe()
	type result struct {
		j   service.ScreeningJob
		err error
	}
	slow := make(chan result, 1)
	go func() {
		j, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, pr)
		slow <- result{j, err}
	}()
	// The upload has begun once its first line is taken.
	if _, err := pw.Write(orgFile(t, "MP", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "MQ", 2))); err != nil {
		t.Fatalf("a second job beside an upload: %v", err)
	}
	unread := &readCounter{r: bytes.NewReader(orgFile(t, "MR", 2))}
	_, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, unread)
	if !errors.Is(err, service.ErrTooManyScreenings) || !strings.Contains(err.Error(), "2 screening jobs") || unread.n != 0 {
		t.Fatalf("a third job: %v after reading %d bytes, want ErrTooManyScreenings before reading", err, unread.n)
	}
	pw.Close()
	if r := <-slow; r.err != nil || r.j.Total != 1 {
		t.Fatalf("the upload: %+v %v", r.j, r.err)
	}
	if _, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "MT", 2))); !errors.Is(err, service.ErrTooManyScreenings) {
		t.Fatalf("a third job once the upload is stored: %v", err)
	}
}

type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
