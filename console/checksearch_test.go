package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// An auditor finds checks on the evidence page by partner, action, outcome
// and period, each linked to its evidence; subjects' ID numbers are on
// neither the page nor in any address.
func TestEvidencePageFindsChecks(t *testing.T) {
	h := newHarnessWith(t, func(d *console.Deps) {
		d.Checks = service.NewStats(d.Checker.Catalog(), d.Records.(service.FollowUpStore))
	})
	ctx := context.Background()
	subjects := []string{testenv.USCC(t, "91110108MA01CT000"), testenv.USCC(t, "91110108MA01CT001")}
	var partners []string
	var ids []string // newest first
	for i := range 2 {
		id, _ := h.newPartner(service.RolePartner)
		partners = append(partners, id)
		p, err := h.partners.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		caller := service.Caller{ClientID: p.ClientID, Role: service.RolePartner, Actions: p.Actions, Visibility: p.Visibility}
		ans, err := h.checker.Check(ctx, caller, service.CheckRequest{Subject: subjects[i], Action: "government_procurement"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{ans.CheckID}, ids...)
	}
	aud, secret := h.newPartner(service.RoleAuditor)
	b, _ := h.signedIn(aud, secret)

	// Opening the page searches nothing; the form is there.
	p := b.get("/console/evidence")
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="check-search"`) || !strings.Contains(p.body, `id="search-submit"`) ||
		strings.Contains(p.body, `id="search-results"`) {
		t.Fatalf("evidence page: %d\n%s", p.status, p.body)
	}
	linked := regexp.MustCompile(`<a href="/console/evidence\?check=([^"]+)">`)
	found := func(q url.Values) []string {
		t.Helper()
		q.Set("search", "1")
		p := b.get("/console/evidence?" + q.Encode())
		if p.status != http.StatusOK {
			t.Fatalf("search %s: %d\n%s", q.Encode(), p.status, p.body)
		}
		for _, s := range subjects {
			if strings.Contains(p.body, s) {
				t.Fatalf("search %s shows a subject's ID number", q.Encode())
			}
		}
		var out []string
		for _, m := range linked.FindAllStringSubmatch(p.body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	if got := found(url.Values{}); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("all: %v, want %v", got, ids)
	}
	if got := found(url.Values{"partner": {partners[0]}}); len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("partner: %v, want %v", got, ids[1])
	}
	if got := found(url.Values{"outcome": {"clear"}, "action": {"government_procurement"}}); len(got) != 2 {
		t.Fatalf("clear procurement checks: %v", got)
	}
	if got := found(url.Values{"outcome": {"prohibit"}}); len(got) != 0 {
		t.Fatalf("another outcome: %v", got)
	}
	if got := found(url.Values{"action": {"bank_credit"}}); len(got) != 0 {
		t.Fatalf("another action: %v", got)
	}
	if got := found(url.Values{"outcome": {"clear"}, "from": {"2020-01-01"}, "to": {"2020-06-30"}}); len(got) != 0 {
		t.Fatalf("another period: %v", got)
	}
	// Each link opens the check's evidence.
	ev := b.get("/console/evidence?check=" + url.QueryEscape(ids[0]))
	if ev.status != http.StatusOK || !strings.Contains(ev.body, `href="/console/evidence/receipts/`+ids[0]+`"`) {
		t.Fatalf("the found check's evidence: %d", ev.status)
	}

	// Bad filters are refused on the page, naming the field.
	for q, field := range map[string]string{
		"from=yesterday":                "from",
		"outcome=denied":                "outcome",
		"from=2025-01-01&to=2026-06-01": "from",
		"after=nonsense!":               "after",
	} {
		p := b.get("/console/evidence?search=1&" + q)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="problem"`) || !strings.Contains(p.body, "<code>"+field+"</code>") {
			t.Errorf("%s: %d, want 400 naming %s\n%s", q, p.status, field, p.body)
		}
	}

	// A console without the search says so.
	plain := newHarness(t)
	b2, _ := plain.signedIn(adminID, adminSecret)
	if p := b2.get("/console/evidence?search=1"); p.status != http.StatusOK || strings.Contains(p.body, `id="search-submit"`) {
		t.Fatalf("without the search: %d", p.status)
	}
}

// The search's next page is linked by an address that, followed, gives
// the next page (it was query-escaped twice, so the link searched nothing).
func TestEvidenceSearchOlderPage(t *testing.T) {
	h := newHarnessWith(t, func(d *console.Deps) {
		d.Checks = service.NewStats(d.Checker.Catalog(), d.Records.(service.FollowUpStore))
	})
	ctx := context.Background()
	id, _ := h.newPartner(service.RolePartner)
	p, err := h.partners.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	caller := service.Caller{ClientID: p.ClientID, Role: service.RolePartner, Actions: p.Actions, Visibility: p.Visibility}
	subject := testenv.USCC(t, "91110108MA01CT002")
	for range service.DefaultCheckPage + 1 {
		if _, err := h.checker.Check(ctx, caller, service.CheckRequest{Subject: subject, Action: "government_procurement"}); err != nil {
			t.Fatal(err)
		}
	}
	aud, secret := h.newPartner(service.RoleAuditor)
	b, _ := h.signedIn(aud, secret)
	first := b.get("/console/evidence?" + url.Values{"search": {"1"}, "partner": {id}}.Encode())
	m := regexp.MustCompile(`<a href="([^"]+)#check-search" id="search-older">`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatalf("no link to the older page:\n%s", first.body)
	}
	link := strings.ReplaceAll(m[1], "&amp;", "&")
	if strings.Contains(link, "%3d") || strings.Contains(link, "%26") || !strings.Contains(link, "after=") {
		t.Fatalf("older link %q is escaped twice", link)
	}
	older := b.get(link)
	rows := regexp.MustCompile(`<a href="/console/evidence\?check=`).FindAllString(older.body, -1)
	if older.status != http.StatusOK || len(rows) != 1 {
		t.Fatalf("the older page (%s): %d, %d checks\n%s", link, older.status, len(rows), older.body)
	}
}
