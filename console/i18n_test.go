package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// The Chinese pages show statuses, states, visibility and the catalogue's
// lists and actions in words, never as the stored English value or id:
// those stay in attributes (data-status, title) and in <code>.
func TestChinesePagesShowNoRawValues(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	b, token := h.signedIn(adminID, adminSecret)
	cat := h.checker.Catalog()

	// An entry of a list whose repair rule allows it after a year, decided
	// 13 months ago: an objection filed and rejected, then a repair.
	subject := testenv.USCC(t, "91110108MA01RP000")
	decided := h.clock.Now().AddDate(-1, -1, 0).In(time.FixedZone("CST", 8*3600))
	p := b.post("/console/entries", url.Values{"csrf": {token}, "subject_id": {subject}, "list": {"urban_management_black"},
		"originating_department": {"某市城市管理局"}, "reason": {"违法建设拒不整改"}, "legal_basis": {"《城乡规划法》"},
		"decided_at": {decided.Format("2006-01-02T15:04")}, "published_at": {decided.Add(24 * time.Hour).Format("2006-01-02T15:04")}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create entry: %d\n%s", p.status, p.body)
	}
	entry := p.header.Get("Location")
	entryID := strings.TrimPrefix(strings.SplitN(entry, "?", 2)[0], "/console/entries/")
	if p := b.post("/console/entries/"+entryID+"/objections", url.Values{"csrf": {token}, "filed_by": {"administrator"}, "grounds": {"主体认为认定有误"}}); p.status != http.StatusSeeOther {
		t.Fatalf("file objection: %d\n%s", p.status, p.body)
	}
	open := regexp.MustCompile(`action="/console/objections/([^/"]+)/decision"`).FindStringSubmatch(b.get(entry).body)
	if open == nil {
		t.Fatal("no open objection on the entry's page")
	}
	if p := b.post("/console/objections/"+open[1]+"/decision", url.Values{"csrf": {token}, "entry_id": {entryID}, "decision": {"rejected"}}); p.status != http.StatusSeeOther {
		t.Fatalf("decide objection: %d\n%s", p.status, p.body)
	}
	if p := b.post("/console/entries/"+entryID+"/repairs", url.Values{"csrf": {token}, "grounds": {"已整改并作出信用承诺"}, "evidence_refs": {"承诺书"}}); p.status != http.StatusSeeOther {
		t.Fatalf("apply repair: %d\n%s", p.status, p.body)
	}

	// A partner with a scope, and a check it made, for the overview.
	pt, _, err := h.partners.Create(ctx, service.NewPartnerInput{Name: "某市公共资源交易中心", Role: service.RolePartner,
		Actions: []string{"government_procurement"}, Visibility: service.VisibilityFull})
	if err != nil {
		t.Fatal(err)
	}
	caller := service.Caller{ClientID: pt.ClientID, Role: service.RolePartner, Actions: pt.Actions, Visibility: pt.Visibility}
	if _, err := h.checker.Check(ctx, caller, service.CheckRequest{Subject: subject, Action: "government_procurement"}); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(3 * time.Second) // past the overview's statistics cache

	raw := map[string]bool{}
	for _, v := range []string{
		string(policy.StatusPending), string(policy.StatusActive), string(policy.StatusUnderObjection), string(policy.StatusAwaitingExit),
		string(policy.StatusExpired), string(policy.StatusRepaired), string(policy.StatusRevoked),
		string(policy.StateApplied), string(policy.StateReviewed), string(policy.StateApproved), string(policy.StateRefused),
		string(service.PartnerActive), string(service.PartnerRevoked), string(service.VisibilityStandard), string(service.VisibilityFull),
		string(service.CredentialSecret), string(service.CredentialPublicKey),
	} {
		raw[v] = true
	}
	for _, l := range cat.Lists() {
		raw[l.ID] = true
	}
	for _, a := range cat.Actions() {
		raw[a.ID] = true
	}
	procurement, _ := cat.Action("government_procurement")
	urban, _ := cat.List("urban_management_black")
	for _, c := range []struct {
		path string
		says []string   // words the page must show in their place
		form url.Values // posted, with the page's CSRF token, when set
	}{
		{"/console/entries", []string{urban.Name, "有效"}, nil},
		{entry, []string{urban.Name, "有效", "已申请", "异议不成立"}, nil},
		{"/console/partners/" + pt.ClientID, []string{procurement.Name, "完整", "有效", "客户端密钥"}, nil},
		{"/console/partners", []string{procurement.Name}, nil},
		{"/console/overview", []string{procurement.Name}, nil},
		{"/console/subjects", []string{urban.Name, "有效", "适用"}, url.Values{"id": {subject}}},
	} {
		var p page
		if c.form != nil {
			c.form.Set("csrf", token)
			p = b.post(c.path, c.form)
		} else {
			p = b.get(c.path)
		}
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d\n%s", c.path, p.status, p.body)
		}
		text := visibleText(p.body)
		for _, w := range regexp.MustCompile(`[A-Za-z0-9_]+`).FindAllString(text, -1) {
			if raw[w] {
				t.Errorf("%s shows the raw value %q:\n%s", c.path, w, text)
			}
		}
		for _, w := range c.says {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not say %q:\n%s", c.path, w, text)
			}
		}
	}
}

var (
	codeElement = regexp.MustCompile(`(?s)<code[^>]*>.*?</code>|<(script|style)[^>]*>.*?</(script|style)>`)
	anyTag      = regexp.MustCompile(`(?s)<[^>]*>`)
)

// visibleText is a page's text as a reader sees it: no tags, no
// attributes, and no <code>, where ids are shown on purpose.
func visibleText(body string) string {
	body = codeElement.ReplaceAllString(body, " ")
	return html.UnescapeString(anyTag.ReplaceAllString(body, " "))
}

// ?done= is from the address bar: a page shows only the notices the
// console has words for, never the raw key of another.
func TestOnlyKnownNoticesAreShown(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	p := b.post("/console/entries", url.Values{"csrf": {token}, "subject_id": {testenv.USCC(t, "91110108MA01RP000")}, "list": {"urban_management_black"},
		"originating_department": {"某市城市管理局"}, "reason": {"违法建设拒不整改"}, "legal_basis": {"《城乡规划法》"},
		"decided_at": {"2026-01-01T09:00"}, "published_at": {"2026-01-02T09:00"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create entry: %d\n%s", p.status, p.body)
	}
	entry := strings.SplitN(p.header.Get("Location"), "?", 2)[0]
	pt, _ := h.newPartner(service.RoleAuditor)
	partner := "/console/partners/" + pt
	notice := regexp.MustCompile(`<p class="notice" role="status">([^<]*)</p>`)
	for _, c := range []struct{ path, want string }{
		{entry + "?done=created", "条目已新增并存证。"},
		{entry + "?done=anything", ""},
		{entry + "?done=partner_created", ""},
		{entry + "?done=" + url.QueryEscape("<b>x</b>"), ""},
		{partner + "?done=updated", "接入方已更新。"},
		{partner + "?done=anything", ""},
		{partner + "?done=created", "接入方已创建。"},
	} {
		p := b.get(c.path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", c.path, p.status)
		}
		got := ""
		if m := notice.FindStringSubmatch(p.body); m != nil {
			got = m[1]
		}
		if got != c.want {
			t.Errorf("%s: notice %q, want %q", c.path, got, c.want)
		}
	}
}

// A refused lookup is titled in Chinese and names the form's field, not
// the API's.
func TestSubjectLookupProblemIsInTheFormsWords(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	p := b.post("/console/subjects", url.Values{"csrf": {token}, "id": {testenv.USCC(t, "91110108MA01RP000")}, "at": {"2200-01-01"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "<code>invalid_as_of</code>") {
		t.Fatalf("a future time: %d\n%s", p.status, p.body)
	}
	if !strings.Contains(p.body, "<strong>时间无效</strong>") || strings.Contains(p.body, "Invalid time") {
		t.Errorf("the problem is not titled in Chinese:\n%s", p.body)
	}
	if !strings.Contains(p.body, "<code>at</code>") || strings.Contains(p.body, "<code>as_of</code>") {
		t.Errorf("the problem does not name the form's field at:\n%s", p.body)
	}
}
