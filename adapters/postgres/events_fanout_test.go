package postgres_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// TestRacingFanoutsRecordOnlyPublishedEvents: two replicas fanning the
// same outbox out at once (an import of 400 entries of watched subjects)
// publish every change once, and the evidence log's events_published
// records name exactly the events that exist, each once. Before the
// fan-out was claimed, both computed the same rows and recorded their
// events; the one that lost the publication left records naming events
// that never existed (2 093 ids for 1 054 events after a 1 000-entry
// import).
func TestRacingFanoutsRecordOnlyPublishedEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, stores := replicas(t, 2)
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	bank := service.Partner{ID: "p-bank", ClientID: "bank", Name: "银行", Role: service.RolePartner,
		Actions: []string{"government_procurement"}, Status: service.PartnerActive, CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := stores[0].InsertPartner(ctx, bank); err != nil {
		t.Fatal(err)
	}
	const n = 400
	subjects := make([]string, n)
	entries := make([]policy.Entry, n)
	for i := range subjects {
		subjects[i] = testenv.USCC(t, fmt.Sprintf("91110000MA%07d", i))
		entries[i] = policy.Entry{ID: fmt.Sprintf("ent-%03d", i), Subject: policy.SubjectID{Kind: policy.KindOrganization, Value: subjects[i]},
			List: "safety_production_blacklist", OriginatingDepartment: "应急管理局", Reason: "r", LegalBasis: "b",
			DecidedAt: now.Add(-48 * time.Hour), PublishedAt: now.Add(-24 * time.Hour), CreatedAt: now, UpdatedAt: now, Version: 1}
	}
	if _, _, err := stores[0].WatchSubjects(ctx, "bank", subjects, false, now); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].InsertEntries(ctx, entries); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		app := evidence.NewAppender(s)
		t.Cleanup(app.Close)
		ev := service.NewEvents(s, s, s, cat, service.WithEventsAudit(service.NewAudit(app)))
		wg.Go(func() {
			for {
				got, err := ev.FanOut(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if got > 0 {
					continue
				}
				left, err := s.PendingChanges(ctx, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if len(left) == 0 {
					return
				}
				time.Sleep(time.Millisecond) // the other replica holds the fan-out
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	exist := map[string]bool{}
	for after := int64(0); ; {
		evs, err := stores[0].Events(ctx, "bank", after, service.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			exist[e.ID] = true
			after = e.Seq
		}
	}
	if len(exist) != n {
		t.Fatalf("%d events published, want one per entry (%d)", len(exist), n)
	}
	named := map[string]int{}
	var failed []string
	for after := int64(-1); ; {
		recs, err := stores[0].RecordsOfKind(ctx, evidence.KindAdmin, after, service.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			after = int64(r.Index)
			var body struct {
				Act     service.Act `json:"act"`
				Details struct {
					Events []struct {
						ID string `json:"id"`
					} `json:"events"`
					ActID string `json:"act_id"`
				} `json:"details"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			switch body.Act {
			case service.ActEventsPublished:
				for _, e := range body.Details.Events {
					named[e.ID]++
				}
			case service.ActFailed:
				failed = append(failed, body.Details.ActID)
			}
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d publications failed (act_failed): the replicas computed the same rows", len(failed))
	}
	ghosts := 0
	for id, c := range named {
		if !exist[id] {
			ghosts++
		} else if c != 1 {
			t.Errorf("event %s named by %d records", id, c)
		}
	}
	if ghosts > 0 || len(named) != len(exist) {
		t.Fatalf("events_published records name %d events, %d of which do not exist; %d events exist", len(named), ghosts, len(exist))
	}
}
