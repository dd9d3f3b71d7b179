package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// residentID returns the valid resident ID number that ends the 17 digits
// of prefix with the right check character.
func residentID(t *testing.T, prefix string) string {
	t.Helper()
	for _, c := range "0123456789X" {
		if id, err := policy.ParseSubjectID(prefix + string(c)); err == nil && id.Kind == policy.KindPerson {
			return id.Value
		}
	}
	t.Fatalf("no valid resident ID starts with %s", prefix)
	return ""
}

// entryIDs are the ids of an answer's entries.
func entryIDs(t *testing.T, answer map[string]any) []string {
	t.Helper()
	raw, ok := answer["entries"].([]any)
	if !ok {
		t.Fatalf("answer without entries: %v", answer)
	}
	ids := make([]string, 0, len(raw))
	for _, e := range raw {
		ids = append(ids, e.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// A general-level urban-management record is kept by the 城管部门 that
// recorded it (篇十三 第七条(二)): a bank's check on a person with only
// such an entry answers clear with no entries — single, batch, screening
// and the stored record alike — while the department whose own measure
// rests on it, administrators and auditors see it, and a yellow entry
// (published, 第七条(四)) is shown to the bank as before.
func TestKeptEntriesAreNotDisclosedToPartners(t *testing.T) {
	h := newHarness(t, withScreenings())
	kept := residentID(t, "51010419900101123")
	both := residentID(t, "51010419900101124")
	create := func(subject, list string) string {
		t.Helper()
		res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, map[string]any{
			"subject_id": subject, "list": list, "originating_department": "某市城市管理局",
			"reason": "占道经营", "legal_basis": "《城市市容和环境卫生管理条例》",
			"decided_at":   time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339),
			"published_at": time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339),
		})
		if res.Status != http.StatusCreated {
			t.Fatalf("create %s entry: %d %s", list, res.Status, res.Body)
		}
		return res.json(t)["id"].(string)
	}
	general := create(kept, "urban_management_general")
	general2 := create(both, "urban_management_general")
	yellow := create(both, "urban_management_yellow")
	_, bank := h.partner("bank", "bank_credit")
	_, dept := h.partner("城管", "supervision")
	check := func(tok, subject, action string) map[string]any {
		t.Helper()
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]string{"id": subject}, "action": action})
		if res.Status != http.StatusOK {
			t.Fatalf("check %s %s: %d %s", subject, action, res.Status, res.Body)
		}
		return res.json(t)
	}

	// The bank: clear, no measure, no entry; the stored record is the same.
	a := check(bank, kept, "bank_credit")
	if a["outcome"] != "clear" || len(a["measures"].([]any)) != 0 || len(entryIDs(t, a)) != 0 {
		t.Fatalf("bank's check of a general-level subject: %v", a)
	}
	res := h.doJSON(http.MethodGet, "/v1/checks/"+a["check_id"].(string), bank, nil)
	if res.Status != http.StatusOK || bytes.Contains(res.Body, []byte(general)) || bytes.Contains(res.Body, []byte("urban_management_general")) {
		t.Fatalf("the stored check: %d %s", res.Status, res.Body)
	}
	// The yellow entry is published: shown, the general one beside it not.
	if got := entryIDs(t, check(bank, both, "bank_credit")); !slices.Equal(got, []string{yellow}) {
		t.Fatalf("bank's check of a yellow-list subject shows %v, want [%s]", got, yellow)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks:batch", bank, map[string]any{"action": "bank_credit",
		"subjects": []map[string]string{{"id": kept}, {"id": both}}})
	if res.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	results := res.json(t)["results"].([]any)
	if got := entryIDs(t, results[0].(map[string]any)["check"].(map[string]any)); len(got) != 0 {
		t.Fatalf("batch discloses %v", got)
	}
	if got := entryIDs(t, results[1].(map[string]any)["check"].(map[string]any)); !slices.Equal(got, []string{yellow}) {
		t.Fatalf("batch shows %v, want [%s]", got, yellow)
	}

	// The 城管部门's own measure (ug-01-interview) rests on the entry: it is
	// shown as that measure's basis.
	a = check(dept, kept, "supervision")
	if got := entryIDs(t, a); !slices.Equal(got, []string{general}) || a["outcome"] != "reference" ||
		a["measures"].([]any)[0].(map[string]any)["entry_id"] != general {
		t.Fatalf("supervision check: %v", a)
	}

	// Administrators and auditors see every entry.
	if got := entryIDs(t, check(h.adminTok, kept, "bank_credit")); !slices.Equal(got, []string{general}) {
		t.Fatalf("admin's check shows %v", got)
	}
	res = h.doJSON(http.MethodGet, "/v1/subjects/"+both+"/status", h.adminTok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status: %d %s", res.Status, res.Body)
	}
	if got, want := entryIDs(t, res.json(t)), []string{general2, yellow}; !slices.Equal(got, sorted(want)) {
		t.Fatalf("admin's subject status shows %v, want %v", got, want)
	}

	// A screening job's answers go through the same path.
	file := fmt.Appendf(nil, "{\"id\":%q}\n{\"id\":%q}\n", kept, both)
	res = h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file)
	if res.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	id := res.json(t)["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for job := res.json(t); job["state"] != "done"; job = h.do(http.MethodGet, "/v1/screenings/"+id, bank, "", nil).json(t) {
		if time.Now().After(deadline) || job["state"] == "failed" {
			t.Fatalf("job did not finish: %v", job)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil)
	if out.Status != http.StatusOK {
		t.Fatalf("results: %d %s", out.Status, out.Body)
	}
	sc := bufio.NewScanner(bytes.NewReader(out.Body))
	sc.Buffer(nil, 1<<20)
	seen := 0
	for sc.Scan() {
		var line service.ScreenedAnswer
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		var answer map[string]any
		if err := json.Unmarshal(line.Answer, &answer); err != nil {
			t.Fatalf("line %d: %v", line.Line, err)
		}
		want := []string{}
		if line.SubjectID == both {
			want = []string{yellow}
		}
		if got := entryIDs(t, answer); !slices.Equal(got, want) || line.Outcome != "clear" {
			t.Fatalf("screened %s: %s, entries %v, want %v", line.SubjectID, line.Outcome, got, want)
		}
		seen++
	}
	if seen != 2 {
		t.Fatalf("%d screened lines", seen)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
