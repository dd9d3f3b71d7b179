package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestPendingFeedback: PendingFeedback asks GET /v1/feedback/pending with
// the partner, the cursor and the limit given (none when unset), and reads
// each check's deadline and the next page's cursor.
func TestPendingFeedback(t *testing.T) {
	t.Parallel()
	var asked []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/oauth/token":
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 900})
		case "/v1/feedback/pending":
			asked = append(asked, r.URL.RawQuery)
			_, _ = w.Write([]byte(`{"pending":[{"check_id":"chk_1","log_index":41,"partner":"bank","action":"bank_credit",
				"outcome":"restrict","checked_at":"2026-12-01T02:00:00Z","due_at":"2026-12-08T16:00:00Z","overdue":false,
				"working_days_left":3,"working_days_overdue":0}],"next":"41"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, WithClientSecret("bank", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.PendingFeedback(t.Context(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := PendingCheck{CheckID: "chk_1", LogIndex: 41, Partner: "bank", Action: "bank_credit", Outcome: "restrict",
		CheckedAt: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC), DueAt: time.Date(2026, 12, 8, 16, 0, 0, 0, time.UTC), WorkingDaysLeft: 3}
	if len(page.Pending) != 1 || !reflect.DeepEqual(page.Pending[0], want) || page.Next != "41" {
		t.Fatalf("page: %+v", page)
	}
	if _, err := c.PendingFeedback(t.Context(), "bank", page.Next, 50); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []string{"", "after=41&limit=50&partner=bank"}) {
		t.Fatalf("queries: %q", asked)
	}
}

// TestPendingFeedbackMatchesContract: PendingCheck has the members of the
// contract's PendingFeedback, and the statistics' groups its feedback_late.
func TestPendingFeedbackMatchesContract(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schema string
		typ    reflect.Type
		only   []string // the members checked ("": all)
	}{
		{"PendingFeedback", reflect.TypeFor[PendingCheck](), nil},
		{"StatsGroup", reflect.TypeFor[StatsGroup](), []string{"feedback_late"}},
	} {
		s := specSchema(t, tc.schema)
		fields := jsonFields(tc.typ)
		var props []string
		for name := range s.Properties.KeysFromOldest() {
			props = append(props, name)
			if tc.only != nil && !slices.Contains(tc.only, name) {
				continue
			}
			if _, ok := fields[name]; !ok {
				t.Errorf("%s: %s has no member %q", tc.schema, tc.typ, name)
			}
		}
		for name := range fields {
			if (tc.only == nil || slices.Contains(tc.only, name)) && !slices.Contains(props, name) {
				t.Errorf("%s: %s has %q, which the contract does not", tc.schema, tc.typ, name)
			}
		}
	}
}
