package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// barrier is an EvidenceLog that, once armed for n appends, holds each of
// them until all n have come: writers that each read the state before any
// of them appends, as two replicas given the same request at once do
// (their in-process locks are not shared).
type barrier struct {
	next    service.EvidenceLog
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (b *barrier) arm(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting, b.release = n, make(chan struct{})
}

func (b *barrier) Append(ctx context.Context, recs ...evidence.Record) ([]evidence.Record, error) {
	b.mu.Lock()
	ch := b.release
	if ch != nil {
		if b.waiting--; b.waiting == 0 {
			close(ch)
			b.release = nil
		}
	}
	b.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.next.Append(ctx, recs...)
}

// replica is one process's follow-up services, over the shared store.
type replica struct {
	feedback    *service.Feedback
	commitments *service.Commitments
}

type replicasFixture struct {
	replicas  [2]replica
	barrier   *barrier
	lifecycle *service.Lifecycle
	checkID   string
	subject   string
	partner   service.Caller
	admin     service.Caller
}

func newReplicas(t *testing.T) *replicasFixture {
	t.Helper()
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	f := &replicasFixture{barrier: &barrier{next: app}, subject: testenv.USCC(t, "91440300MA5G00001"),
		partner: service.Caller{ClientID: "procurement", Role: service.RolePartner, Actions: []string{"government_procurement"}},
		admin:   service.Caller{ClientID: "admin-7", Role: service.RoleAdmin}}
	audit := service.NewAudit(app)
	checker := service.NewChecker(cat, st, app, st)
	for i := range f.replicas {
		entries := service.NewEntries(st, cat, service.WithEntriesAudit(audit))
		lifecycle := service.NewLifecycle(entries, st)
		fb := service.NewFeedback(checker, f.barrier, st)
		f.replicas[i] = replica{feedback: fb, commitments: service.NewCommitments(fb, lifecycle)}
		f.lifecycle = lifecycle
	}
	ans, err := checker.Check(t.Context(), f.partner, service.CheckRequest{Subject: f.subject, Action: "government_procurement"})
	if err != nil {
		t.Fatal(err)
	}
	f.checkID = ans.CheckID
	return f
}

// race runs fn on both replicas at once, each past its read of the state
// before either appends, and returns their errors.
func (f *replicasFixture) race(fn func(r replica, i int) error) [2]error {
	f.barrier.arm(2)
	var errs [2]error
	var wg sync.WaitGroup
	for i, r := range f.replicas {
		wg.Go(func() { errs[i] = fn(r, i) })
	}
	wg.Wait()
	return errs
}

// oneWon checks that exactly one of errs is nil and the other is want,
// and returns the winner's position.
func oneWon(t *testing.T, errs [2]error, want error) int {
	t.Helper()
	switch {
	case errs[0] == nil && errors.Is(errs[1], want):
		return 0
	case errs[1] == nil && errors.Is(errs[0], want):
		return 1
	}
	t.Fatalf("errors %v, want one nil and one %v", errs, want)
	return -1
}

// TestFeedbackAcrossReplicas: the same feedback sent to two replicas at
// once is accepted by one, and the other answers feedback_exists; so are
// two corrections of the same feedback. The check's feedback stays one
// chain, each correction naming the one before. Before the stores kept one
// feedback per place, both were accepted and the check had two first
// feedbacks, neither correcting the other.
func TestFeedbackAcrossReplicas(t *testing.T) {
	t.Parallel()
	f := newReplicas(t)
	ctx := t.Context()
	in := service.FeedbackInput{Decision: policy.DecisionApproved, Document: "行政许可决定 2026-118", DecidedAt: time.Now().UTC()}
	var got [2]service.FeedbackView
	submit := func(in service.FeedbackInput) func(r replica, i int) error {
		return func(r replica, i int) error {
			var err error
			got[i], err = r.feedback.Submit(ctx, f.partner, f.checkID, in)
			return err
		}
	}
	first := got[oneWon(t, f.race(submit(in)), service.ErrFeedbackExists)]
	in.Corrects, in.Decision = first.FeedbackID, policy.DecisionWithdrawn
	second := got[oneWon(t, f.race(submit(in)), service.ErrFeedbackExists)]
	list, err := f.replicas[0].feedback.OfCheck(ctx, f.partner, f.checkID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].FeedbackID != first.FeedbackID || list[0].Corrects != "" ||
		list[1].FeedbackID != second.FeedbackID || list[1].Corrects != first.FeedbackID {
		t.Fatalf("feedback of the check: %+v, want %s then %s correcting it", list, first.FeedbackID, second.FeedbackID)
	}
	// The chain goes on from the current feedback, on either replica.
	in.Corrects = second.FeedbackID
	if _, err := f.replicas[1].feedback.Submit(ctx, f.partner, f.checkID, in); err != nil {
		t.Fatalf("correction of the current feedback: %v", err)
	}
}

// TestCommitmentAcrossReplicas: an administrator's fulfilment on one
// replica and breach with a violation on the other, at once: one is
// accepted and the other answers commitment_closed, and the violation is
// recorded only when the breach is the change that closed the commitment.
// Before, both were accepted: the breach answered "fulfilled" and still
// recorded the violation, points for a promise recorded as kept.
func TestCommitmentAcrossReplicas(t *testing.T) {
	t.Parallel()
	f := newReplicas(t)
	ctx := t.Context()
	due, err := policy.ParseDate(time.Now().AddDate(0, 0, 15).Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	ops := [2]string{service.CommitmentFulfilled, service.CommitmentBreached}
	breached := 0
	for round := range 4 {
		cm, err := f.replicas[0].commitments.Record(ctx, f.admin, service.CommitmentInput{Subject: f.subject, Kind: "repair",
			Promise: "纠正失信行为并消除不良影响", Due: due, CheckID: f.checkID})
		if err != nil {
			t.Fatal(err)
		}
		var got [2]service.CommitmentView
		errs := f.race(func(r replica, i int) error {
			// Each round the other replica breaches, so that both may be
			// first to the log.
			op := ops[(i+round)%2]
			var ch service.CommitmentChange
			if op == service.CommitmentBreached {
				ch.Violation = &service.ViolationInput{Item: "um-s-02", DecidedAt: time.Now().Add(-time.Hour).UTC(),
					Department: "深圳市南山区城市管理和综合执法局", Reference: "深南城管罚〔2026〕88号"}
			}
			var err error
			got[i], err = r.commitments.Change(ctx, f.admin, cm.ID, op, ch)
			return err
		})
		won := oneWon(t, errs, service.ErrCommitmentClosed)
		state := ops[(won+round)%2]
		if state == service.CommitmentBreached {
			breached++
		}
		if got[won].State != state || (got[won].Violation != nil) != (state == service.CommitmentBreached) {
			t.Fatalf("round %d: the accepted %s answered %+v", round, state, got[won])
		}
		stored, err := f.replicas[1].commitments.Get(ctx, f.admin, cm.ID)
		if err != nil || stored.State != state {
			t.Fatalf("round %d: commitment %+v, %v, want %s", round, stored, err, state)
		}
		_, records, _, err := f.lifecycle.SubjectViolations(ctx, f.subject)
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != breached {
			t.Fatalf("round %d: %d violations after %d breaches that closed their commitment", round, len(records), breached)
		}
	}
}
