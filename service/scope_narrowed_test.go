package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// What a partner receives besides a check's answer — a screening job's
// answers and results, its events and webhook deliveries — follows its
// scope as it is now: narrowing it (PATCH /v1/admin/partners/{id}) reaches
// them as it reaches checks.

// narrowStore is what these tests need of a store: both adapters are one.
type narrowStore interface {
	service.Store
	service.EntriesStore
	service.PushStore
	evidence.Sink
}

// narrowWorld is the services over one store, with the audit records kept.
type narrowWorld struct {
	t        *testing.T
	store    narrowStore
	audit    *spy
	partners *service.Partners
	entries  *service.Entries
	checker  *service.Checker
}

func newNarrowWorld(t *testing.T, st narrowStore) *narrowWorld {
	t.Helper()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(app.Close)
	w := &narrowWorld{t: t, store: st, audit: &spy{next: app}}
	audit := service.NewAudit(w.audit)
	w.partners = service.NewPartners(st, cat, service.WithSecretCost(testenv.SecretCost()), service.WithPartnersAudit(audit))
	w.entries = service.NewEntries(st, cat, service.WithEntriesAudit(audit))
	w.checker = service.NewChecker(cat, st, app, st)
	return w
}

// eachNarrowStore runs fn on a fresh SQLite store and a fresh PostgreSQL
// schema.
func eachNarrowStore(t *testing.T, fn func(t *testing.T, w *narrowWorld)) {
	eachStore(t, func(t *testing.T, st testStore) { fn(t, newNarrowWorld(t, st)) })
}

// fullPartner registers partner E of the review: visibility full, both
// kinds of subject, bank_credit and government_procurement.
func (w *narrowWorld) fullPartner(name string) service.Partner {
	w.t.Helper()
	p, _, err := w.partners.Create(context.Background(), service.NewPartnerInput{Name: name, Role: service.RolePartner,
		Actions:      []string{"bank_credit", "government_procurement"},
		SubjectKinds: []policy.SubjectKind{policy.KindOrganization, policy.KindPerson}, Visibility: service.VisibilityFull})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// narrow patches a partner's scope as PATCH /v1/admin/partners/{id} does
// (nil leaves a field) and returns its caller as a request now gets it.
func (w *narrowWorld) narrow(clientID string, actions []string, kinds []policy.SubjectKind, vis service.Visibility) service.Caller {
	w.t.Helper()
	c, err := w.patch(clientID, actions, kinds, vis)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// patch is narrow, for a goroutine other than the test's.
func (w *narrowWorld) patch(clientID string, actions []string, kinds []policy.SubjectKind, vis service.Visibility) (service.Caller, error) {
	var patch service.PartnerPatch
	if actions != nil {
		patch.Actions = &actions
	}
	if kinds != nil {
		patch.SubjectKinds = &kinds
	}
	if vis != "" {
		patch.Visibility = &vis
	}
	p, err := w.partners.Update(context.Background(), clientID, patch)
	return service.CallerOf(p), err
}

// callerNow is a partner's caller as a request now gets it.
func (w *narrowWorld) callerNow(clientID string) service.Caller {
	w.t.Helper()
	p, err := w.partners.Get(context.Background(), clientID)
	if err != nil {
		w.t.Fatal(err)
	}
	return service.CallerOf(p)
}

// The review's case: a person on the court's list, its reason naming a
// third party, and an organisation on the safety list.
const (
	narrowPersonReason = "拒不履行对李四的抚养费给付义务"
	narrowPersonDept   = "北京市朝阳区人民法院"
	narrowOrgReason    = "发生较大生产安全责任事故"
)

func (w *narrowWorld) listBoth() {
	w.t.Helper()
	ctx := context.Background()
	past := time.Now().Add(-72 * time.Hour)
	if _, err := w.entries.Create(ctx, service.EntryInput{Subject: lcPerson, List: "court_dishonest_debtor",
		OriginatingDepartment: narrowPersonDept, Reason: narrowPersonReason, LegalBasis: "《民事诉讼法》第二百六十二条",
		DecidedAt: past, PublishedAt: past}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.entries.Create(ctx, safetyEntry(past)); err != nil {
		w.t.Fatal(err)
	}
}

// narrowAtStore is a store that calls hook once a job's progress reaches
// at subjects: a partner's scope narrowed between two batches.
type narrowAtStore struct {
	service.ScreeningStore
	at   int64
	hook func()
	once sync.Once
}

func (s *narrowAtStore) UpdateScreening(ctx context.Context, j service.ScreeningJob) error {
	if err := s.ScreeningStore.UpdateScreening(ctx, j); err != nil {
		return err
	}
	if j.Done >= s.at && j.State == service.ScreeningRunning {
		s.once.Do(s.hook)
	}
	return nil
}

// results downloads a job's results as caller (NDJSON), by line.
func narrowResults(t *testing.T, sc *service.Screenings, caller service.Caller, id string) (map[int64]service.ScreenedAnswer, error) {
	t.Helper()
	var b bytes.Buffer
	if _, err := sc.ResultsNDJSON(context.Background(), caller, id, &b); err != nil {
		return nil, err
	}
	out := map[int64]service.ScreenedAnswer{}
	for l := range strings.Lines(b.String()) {
		var a service.ScreenedAnswer
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		out[a.Line] = a
	}
	return out, nil
}

// A job whose partner loses the job's action stops before its next
// batch as a revoked partner's does: failed, saying why, with no evidence
// record, no results and no files.
func TestScreeningStopsWhenItsActionIsTakenAway(t *testing.T) {
	t.Parallel()
	eachNarrowStore(t, func(t *testing.T, w *narrowWorld) {
		ctx := context.Background()
		e := w.fullPartner("范围被收窄的银行")
		dir := t.TempDir()
		st := &narrowAtStore{ScreeningStore: w.store, at: 2000}
		st.hook = func() {
			if _, err := w.patch(e.ClientID, []string{"government_procurement"}, nil, ""); err != nil {
				t.Error(err)
			}
		}
		sc := service.NewScreenings(w.checker, st, dir, service.WithScreeningsPartners(w.store))
		j, err := sc.Submit(ctx, service.CallerOf(e), "bank_credit", service.FormatNDJSON, bytes.NewReader(orgFile(t, "NA", 2001)))
		if err != nil {
			t.Fatal(err)
		}
		runScreenings(t, sc)
		j = waitScreening(t, sc, j.ID)
		if j.State != service.ScreeningFailed || !strings.Contains(j.Error, "scope was narrowed") || !strings.Contains(j.Error, "bank_credit") ||
			j.Done != 2000 || j.RecordID != "" {
			t.Fatalf("job of a partner no longer allowed its action: %+v, want failed after 2000 subjects, saying why", j)
		}
		if _, err := w.store.Record(ctx, j.ID); !errors.Is(err, evidence.ErrNotFound) {
			t.Errorf("the stopped job has an evidence record: %v", err)
		}
		if _, err := sc.ResultsNDJSON(ctx, admin, j.ID, io.Discard); !errors.Is(err, service.ErrScreeningNotDone) {
			t.Errorf("results of the stopped job: %v", err)
		}
		if err := filesGone(filepath.Join(dir, j.ID), 10*time.Second); err != nil {
			t.Errorf("the stopped job left its files: %v", err)
		}
	})
}

// A job whose partner loses persons and full visibility between two
// batches answers, from the next batch on, a person with the error a
// batch check gives and an organisation without the entry's reason; its
// results, which hold answers at full visibility about a person, are
// refused to the partner (the administrator still reads them), and the
// store keeps what they disclose.
func TestScreeningFollowsNarrowedKindsAndVisibility(t *testing.T) {
	t.Parallel()
	eachNarrowStore(t, func(t *testing.T, w *narrowWorld) {
		ctx := context.Background()
		w.listBoth()
		e := w.fullPartner("范围被收窄的银行")
		st := &narrowAtStore{ScreeningStore: w.store, at: 2000}
		st.hook = func() {
			if _, err := w.patch(e.ClientID, nil, []policy.SubjectKind{policy.KindOrganization}, service.VisibilityStandard); err != nil {
				t.Error(err)
			}
		}
		sc := service.NewScreenings(w.checker, st, t.TempDir(), service.WithScreeningsPartners(w.store))
		// Lines 1-2000 the first batch (the person first, the listed
		// organisation second), 2001-2002 the second.
		file := append(ndjsonLines(lcPerson, lcOrg), orgFile(t, "NB", 1998)...)
		file = append(file, ndjsonLines(lcPerson, lcOrg)...)
		j, err := sc.Submit(ctx, service.CallerOf(e), "bank_credit", service.FormatNDJSON, bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		runScreenings(t, sc)
		if j = waitScreening(t, sc, j.ID); j.State != service.ScreeningDone {
			t.Fatalf("job: %+v", j)
		}
		rs, err := narrowResults(t, sc, admin, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		before, beforeOrg, after, afterOrg := rs[1], rs[2], rs[2001], rs[2002]
		if before.Answer == nil || !strings.Contains(string(before.Answer), narrowPersonReason) ||
			!strings.Contains(string(beforeOrg.Answer), narrowOrgReason) {
			t.Fatalf("answers before the narrowing, at full visibility: %s / %s", before.Answer, beforeOrg.Answer)
		}
		if after.Answer != nil || after.Error == nil || after.Error.Code != "subject_kind_not_allowed" {
			t.Errorf("a person after persons were taken from the partner: %+v, want error subject_kind_not_allowed", after)
		}
		if afterOrg.Answer == nil || strings.Contains(string(afterOrg.Answer), narrowOrgReason) ||
			strings.Contains(string(afterOrg.Answer), `"originating_department"`) {
			t.Errorf("an organisation after visibility was narrowed to standard: %s", afterOrg.Answer)
		}
		if j.Counts["invalid"] != 1 {
			t.Errorf("counts %v, want the person of the second batch invalid", j.Counts)
		}
		narrowed := w.callerNow(e.ClientID)
		if _, err := sc.ResultsNDJSON(ctx, narrowed, j.ID, io.Discard); !errors.Is(err, service.ErrScopeNarrowed) {
			t.Errorf("the partner's download of answers it may no longer see: %v, want ErrScopeNarrowed", err)
		}
		if _, err := sc.Results(ctx, narrowed, j.ID, func(service.ScreenedAnswer) error { return nil }); !errors.Is(err, service.ErrScopeNarrowed) {
			t.Errorf("the partner's CSV download: %v, want ErrScopeNarrowed", err)
		}
		got, err := w.store.GetScreening(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Disclosed == nil || got.Disclosed.Visibility != service.VisibilityFull ||
			!slices.Equal(got.Disclosed.Kinds, []policy.SubjectKind{policy.KindOrganization, policy.KindPerson}) {
			t.Errorf("stored disclosure %+v, want full visibility, both kinds", got.Disclosed)
		}
	})
}

// Narrowed after its job is done, a partner gets none of the results its
// scope no longer covers — a kind of subject answered, the visibility
// they were answered at, their action — and keeps those it still covers.
func TestScreeningResultsFollowScopeNarrowedAfterwards(t *testing.T) {
	t.Parallel()
	eachNarrowStore(t, func(t *testing.T, w *narrowWorld) {
		ctx := context.Background()
		w.listBoth()
		e := w.fullPartner("完成后被收窄的银行")
		sc := service.NewScreenings(w.checker, w.store, t.TempDir(), service.WithScreeningsPartners(w.store))
		withPerson, err := sc.Submit(ctx, service.CallerOf(e), "bank_credit", service.FormatNDJSON, bytes.NewReader(ndjsonLines(lcPerson, lcOrg)))
		if err != nil {
			t.Fatal(err)
		}
		orgsOnly, err := sc.Submit(ctx, service.CallerOf(e), "bank_credit", service.FormatNDJSON, bytes.NewReader(ndjsonLines(lcOrg, lcOrg2)))
		if err != nil {
			t.Fatal(err)
		}
		runScreenings(t, sc)
		for _, id := range []string{withPerson.ID, orgsOnly.ID} {
			if j := waitScreening(t, sc, id); j.State != service.ScreeningDone {
				t.Fatalf("job: %+v", j)
			}
		}
		both := []policy.SubjectKind{policy.KindOrganization, policy.KindPerson}
		orgs := []policy.SubjectKind{policy.KindOrganization}
		all := []string{"bank_credit", "government_procurement"}
		for _, c := range []struct {
			name    string
			actions []string
			kinds   []policy.SubjectKind
			vis     service.Visibility
			// refused: which of the jobs the partner may no longer download.
			withPerson, orgsOnly bool
		}{
			{"persons taken", all, orgs, service.VisibilityFull, true, false},
			{"visibility narrowed", all, both, service.VisibilityStandard, true, true},
			{"action taken", []string{"government_procurement"}, both, service.VisibilityFull, true, true},
			{"nothing narrowed", all, both, service.VisibilityFull, false, false},
		} {
			now := w.narrow(e.ClientID, c.actions, c.kinds, c.vis)
			for _, job := range []struct {
				id      string
				refused bool
			}{{withPerson.ID, c.withPerson}, {orgsOnly.ID, c.orgsOnly}} {
				_, err := sc.ResultsNDJSON(ctx, now, job.id, io.Discard)
				if job.refused != errors.Is(err, service.ErrScopeNarrowed) || (!job.refused && err != nil) {
					t.Errorf("%s: download of %s: %v, refused want %v", c.name, job.id, err, job.refused)
				}
				if _, err := sc.ResultsNDJSON(ctx, admin, job.id, io.Discard); err != nil {
					t.Errorf("%s: the administrator's download of %s: %v", c.name, job.id, err)
				}
			}
		}
	})
}
