package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// addressAttr is every address a page holds: its links, its forms'
// actions, its sources.
var addressAttr = regexp.MustCompile(`(?i)\b(?:href|action|src)="([^"]*)"`)

// noAddressNames fails the test for an address of the page (a link, a
// form's action) that carries id: whatever is in an address ends up in a
// proxy's logs, the browser's history, a bookmark.
func noAddressNames(t *testing.T, what string, p page, id string) {
	t.Helper()
	for _, m := range addressAttr.FindAllStringSubmatch(p.body, -1) {
		if strings.Contains(m[1], id) || strings.Contains(m[1], url.QueryEscape(id)) {
			t.Errorf("%s: an address names the subject: %s", what, m[0])
		}
	}
}

// A subject's ID number is personal information (PIPL) and nginx logs a
// failed request's path and query: the console sends it in a POST's body,
// never in an address. The lookup and the entries filter are forms
// posted with the session's CSRF token; their answers are the POST's
// page, whose links (the language switch's way back included) do not
// carry the number; an entry's subject is looked up by a form, not a
// link; an ID number in an old address (?id=, ?subject_id=) is neither
// looked up nor shown back.
func TestSubjectIDsStayOutOfAddresses(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	subject := testenv.USCC(t, "91110108MA01AD000")
	// One more entry than a page holds, so that the list has a next page.
	const n = 51
	var entry string
	for i := range n {
		decided := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC).AddDate(0, 0, i)
		p := b.post("/console/entries", url.Values{"csrf": {token}, "subject_id": {subject}, "list": {"urban_management_black"},
			"originating_department": {"某市城市管理局"}, "reason": {fmt.Sprintf("违法建设拒不整改（第%d次）", i+1)}, "legal_basis": {"《城乡规划法》"},
			"decided_at": {decided.Format("2006-01-02T15:04")}, "published_at": {decided.Add(24 * time.Hour).Format("2006-01-02T15:04")}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("create entry %d: %d\n%s", i, p.status, p.body)
		}
		entry = strings.SplitN(p.header.Get("Location"), "?", 2)[0]
	}

	t.Run("lookup", func(t *testing.T) {
		form := b.get("/console/subjects")
		if form.status != http.StatusOK || !strings.Contains(form.body, `<form method="post" action="/console/subjects"`) || form.csrf() == "" {
			t.Fatalf("the lookup form is not posted with a CSRF token: %d\n%s", form.status, form.body)
		}
		p := b.post("/console/subjects", url.Values{"csrf": {token}, "id": {subject}})
		if p.status != http.StatusOK || !strings.Contains(p.body, "<h2>"+subject) || !strings.Contains(p.body, `id="action-`) {
			t.Fatalf("posted lookup: %d\n%s", p.status, p.body)
		}
		noAddressNames(t, "the lookup's answer", p, subject)
		if !strings.Contains(p.body, `back=%2fconsole%2fsubjects"`) {
			t.Errorf("the language switch does not lead back to the empty form:\n%s", p.body)
		}
		if p := b.post("/console/subjects", url.Values{"id": {subject}}); p.status != http.StatusForbidden || strings.Contains(p.body, "<h2>"+subject) {
			t.Errorf("a lookup without the CSRF token: %d", p.status)
		}
		// An old address: the empty form, the number nowhere on it.
		old := b.get("/console/subjects?id=" + subject)
		if old.status != http.StatusOK || strings.Contains(old.body, subject) || strings.Contains(old.body, `id="action-`) {
			t.Errorf("GET ?id= is looked up or shown back: %d\n%s", old.status, old.body)
		}
	})

	t.Run("auditors look up too", func(t *testing.T) {
		id, secret := h.newPartner(service.RoleAuditor)
		ab, atoken := h.signedIn(id, secret)
		if p := ab.post("/console/subjects", url.Values{"csrf": {atoken}, "id": {subject}}); p.status != http.StatusOK || !strings.Contains(p.body, "<h2>"+subject) {
			t.Fatalf("an auditor's lookup: %d\n%s", p.status, p.body)
		}
	})

	t.Run("an entry's subject", func(t *testing.T) {
		p := b.get(entry)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", entry, p.status)
		}
		noAddressNames(t, "the entry's page", p, subject)
		if !regexp.MustCompile(`(?s)<form method="post" action="/console/subjects"[^>]*>\s*<input type="hidden" name="csrf" value="[^"]+"><input type="hidden" name="id" value="` + subject + `">`).MatchString(p.body) {
			t.Errorf("the entry's subject is not looked up by a posted form:\n%s", p.body)
		}
	})

	t.Run("entries filter", func(t *testing.T) {
		form := b.get("/console/entries")
		if !strings.Contains(form.body, `<form method="post" action="/console/entries/filter"`) {
			t.Fatalf("the entries filter is not posted:\n%s", form.body)
		}
		p := b.post("/console/entries/filter", url.Values{"csrf": {token}, "subject_id": {subject}, "list": {""}})
		if p.status != http.StatusOK || strings.Count(p.body, "<td>"+subject+"</td>") != 50 {
			t.Fatalf("filtered by subject: %d, %d rows of it\n%s", p.status, strings.Count(p.body, "<td>"+subject+"</td>"), p.body)
		}
		noAddressNames(t, "the filtered list", p, subject)
		next := regexp.MustCompile(`<input type="hidden" name="after" value="([^"]+)">`).FindStringSubmatch(p.body)
		if next == nil || !strings.Contains(p.body, `id="more-entries"`) {
			t.Fatalf("the next page of a subject's entries is not a posted form:\n%s", p.body)
		}
		p = b.post("/console/entries/filter", url.Values{"csrf": {token}, "subject_id": {subject}, "after": {next[1]}})
		if p.status != http.StatusOK || strings.Count(p.body, "<td>"+subject+"</td>") != 1 {
			t.Fatalf("the next page: %d\n%s", p.status, p.body)
		}
		if p := b.post("/console/entries/filter", url.Values{"subject_id": {subject}}); p.status != http.StatusForbidden {
			t.Errorf("a filter without the CSRF token: %d", p.status)
		}
		// An old address: not filtered by the number, nor shown back in
		// the filter or the page's links.
		old := b.get("/console/entries?subject_id=" + subject)
		if old.status != http.StatusOK || strings.Contains(old.body, `value="`+subject+`"`) {
			t.Errorf("GET ?subject_id= is shown back: %d\n%s", old.status, old.body)
		}
		noAddressNames(t, "GET ?subject_id=", old, subject)
	})
}
