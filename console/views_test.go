package console_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// viewsHarness is the harness with push (events, watchlists, webhook
// deliveries) and execution feedback, over the same store and evidence
// log, the services driven by the test as serve's loops would drive them.
type viewsHarness struct {
	*harness
	events     *service.Events
	deliverer  *service.Deliverer
	watchlists *service.Watchlists
}

// newViewsHarness builds it; feedback looks ahead by ahead, so that the
// checks made now are overdue then.
func newViewsHarness(t *testing.T, ahead time.Duration) *viewsHarness {
	t.Helper()
	vh := &viewsHarness{}
	vh.harness = newHarnessOver(t, func(d *console.Deps, b harnessBase) {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		allow, err := webhook.ParseAllow([]string{"127.0.0.0/8"}) // the test's receivers
		if err != nil {
			t.Fatal(err)
		}
		vh.events = service.NewEvents(b.st, b.st, b.st, b.cat, service.WithEventsAudit(b.audit))
		vh.deliverer = service.NewDeliverer(b.st, service.NewWebhookSigner(key), webhook.NewSender(webhook.WithAllow(allow)),
			service.WithDeliveryAudit(b.audit), service.WithDeliveryBackoff(time.Millisecond, time.Millisecond), service.WithDeliveryAttempts(2))
		vh.watchlists = service.NewWatchlists(b.st, service.WithWatchlistsAudit(b.audit))
		d.Deliveries = vh.deliverer
		d.Feedback = service.NewFeedback(d.Checker, b.app, b.st, service.WithFeedbackClock(func() time.Time { return time.Now().Add(ahead) }))
	})
	return vh
}

// partnerCaller makes a partner for government procurement and returns
// it as the service layer sees it.
func (h *harness) partnerCaller(name string) service.Caller {
	h.t.Helper()
	pt, _, err := h.partners.Create(context.Background(), service.NewPartnerInput{Name: name, Role: service.RolePartner,
		Actions: []string{"government_procurement"}, Visibility: service.VisibilityFull})
	if err != nil {
		h.t.Fatal(err)
	}
	return service.CallerOf(pt)
}

// listedNow puts subject on the safety production black list, published
// an hour ago.
func (h *harness) listedNow(subject string) string {
	h.t.Helper()
	return h.entryOn("safety_production_blacklist", subject, func(in *service.EntryInput) {
		in.DecidedAt, in.PublishedAt = h.clock.Now().Add(-2*time.Hour), h.clock.Now().Add(-time.Hour)
		in.OriginatingDepartment, in.Reason, in.LegalBasis = "应急管理部", "发生重大生产安全责任事故", "《安全生产法》"
	})
}

var (
	actRow   = regexp.MustCompile(`<tr class="act" data-act="([a-z_]*)"`)
	actLinks = regexp.MustCompile(`href="/console/evidence\?check=([^"]+)" class="act-record"`)
	nextLink = regexp.MustCompile(`href="/console/([a-z]+)\?([^"]*after=[^"]*)" id="[a-z]+-next"`)
)

// actsOf are the kinds of the acts a page lists, in order.
func actsOf(p page) []string {
	var out []string
	for _, m := range actRow.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	return out
}

// The acts page: an auditor pages through who did what, filters by kind,
// actor, target and period, and opens an act's evidence record; in both
// languages, from the navigation.
func TestActsPageFiltersPagesAndOpensTheRecord(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// 55 partners made by credgate itself, then an entry and a partner by
	// the administrator.
	var first string
	for i := range 55 {
		id, _ := h.newPartner(service.RolePartner)
		if i == 0 {
			first = id
		}
	}
	h.listedNow(testenv.USCC(t, "91110108MA01AC700"))
	if _, _, err := h.partners.Create(service.WithActor(ctx, asAdmin), service.NewPartnerInput{Name: "某县行政审批局", Role: service.RolePartner,
		Actions: []string{"government_procurement"}}); err != nil {
		t.Fatal(err)
	}
	auditorID, auditorSecret := h.newPartner(service.RoleAuditor)
	b, _ := h.signedIn(auditorID, auditorSecret)

	p := b.get("/console/acts")
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="nav-acts"`) || !strings.Contains(p.body, `<title>操作记录`) {
		t.Fatalf("acts: %d\n%s", p.status, p.body)
	}
	if n := len(actsOf(p)); n != 50 {
		t.Fatalf("the first page lists %d acts", n)
	}
	// The next page goes on from the last, the rest of the log.
	m := nextLink.FindStringSubmatch(p.body)
	if m == nil || m[1] != "acts" {
		t.Fatalf("no next page:\n%s", p.body)
	}
	q, _ := url.ParseQuery(strings.ReplaceAll(m[2], "&amp;", "&"))
	p2 := b.get("/console/acts?" + q.Encode())
	all, _ := h.acts.List(ctx, -1, service.MaxPage)
	if got := len(actsOf(p2)); got != len(all)-50 || p2.status != http.StatusOK || nextLink.MatchString(p2.body) {
		t.Fatalf("the second page lists %d acts of %d: %d\n%s", got, len(all), p2.status, p2.body)
	}

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"kind=entry_created", []string{"entry_created"}},
		{"actor=" + adminID, []string{"entry_created", "partner_created"}},
		{"target=" + first, []string{"partner_created"}},
		{"kind=partner_revoked", nil},
		{"from=" + h.clock.Now().In(chinaZone).AddDate(0, 0, 1).Format(time.DateOnly), nil},
		{"to=" + h.clock.Now().In(chinaZone).AddDate(0, 0, -1).Format(time.DateOnly), nil},
		{"actor=" + adminID + "&from=" + h.clock.Now().In(chinaZone).Format(time.DateOnly) + "&to=" + h.clock.Now().In(chinaZone).Format(time.DateOnly),
			[]string{"entry_created", "partner_created"}},
	} {
		p := b.get("/console/acts?" + c.query)
		if got := actsOf(p); p.status != http.StatusOK || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %d %v, want %v", c.query, p.status, got, c.want)
		}
		if c.want == nil && !strings.Contains(p.body, `id="acts-none"`) {
			t.Errorf("%s: no word that nothing matches", c.query)
		}
	}
	// A filter on more than one page of matches pages with the filter.
	p = b.get("/console/acts?kind=partner_created")
	if m := nextLink.FindStringSubmatch(p.body); m == nil || !strings.Contains(m[2], "kind=partner_created") {
		t.Fatalf("a filtered page's next page forgets the filter: %v", m)
	}
	if p := b.get("/console/acts?from=yesterday"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "<code>from</code>") {
		t.Errorf("a bad date: %d\n%s", p.status, p.body)
	}
	if p := b.get("/console/acts?after=-4"); p.status != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d", p.status)
	}

	// The act's evidence record opens on the evidence page, with its
	// receipt to download; the list masks the subject the act names.
	p = b.get("/console/acts?kind=entry_created")
	if strings.Contains(p.body, testenv.USCC(t, "91110108MA01AC700")) || !strings.Contains(p.body, `&#34;subject_id&#34;:&#34;…&#34;`) {
		t.Errorf("the act's details do not mask its subject:\n%s", p.body)
	}
	link := actLinks.FindStringSubmatch(p.body)
	if link == nil {
		t.Fatalf("no link to the evidence record:\n%s", p.body)
	}
	ev := b.get("/console/evidence?check=" + link[1])
	if ev.status != http.StatusOK || !strings.Contains(ev.body, `id="record"`) || !strings.Contains(ev.body, "/console/evidence/receipts/"+link[1]) {
		t.Fatalf("the act's record: %d\n%s", ev.status, ev.body)
	}

	b.lang = "en"
	delete(b.cookies, "credgate_console_lang")
	p = b.get("/console/acts?kind=entry_created")
	if !strings.Contains(p.body, "<title>Acts") || !strings.Contains(p.body, "entry created") || !strings.Contains(p.body, ">Acts</a>") {
		t.Errorf("acts in English:\n%s", p.body)
	}
}

// chinaZone is the console's zone, for the dates of its filters.
var chinaZone = time.FixedZone("UTC+8", 8*3600)

// The deliveries page: why a partner's webhook fails (the receiver's
// status and the attempts), its dead letters, which an administrator
// replays (once per form, recorded as the API's replay is) and an auditor
// may not; the acts of deliveries open from their rows.
func TestDeliveriesPageShowsFailuresAndReplaysDeadLetters(t *testing.T) {
	h := newViewsHarness(t, 0)
	ctx := context.Background()
	var (
		mu   sync.Mutex
		down = true
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer recv.Close()
	bank := h.partnerCaller("某银行信贷审批系统")
	if _, err := h.deliverer.SetWebhook(ctx, bank, recv.URL+"/events"); err != nil {
		t.Fatal(err)
	}
	subject := testenv.USCC(t, "91110108MA01WH700")
	if _, err := h.watchlists.Update(ctx, bank, service.WatchAdd, strings.NewReader(subject+"\n")); err != nil {
		t.Fatal(err)
	}
	h.listedNow(subject)
	deliver := func() {
		t.Helper()
		for {
			n, err := h.events.FanOut(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		for range 4 {
			if _, err := h.deliverer.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	deliver()
	back := "/console/deliveries?" + url.Values{"partner": {bank.ClientID}, "state": {"dead"}}.Encode()

	// An auditor sees why, and no replay.
	auditorID, auditorSecret := h.newPartner(service.RoleAuditor)
	ab, atoken := h.signedIn(auditorID, auditorSecret)
	p := ab.get(back)
	if p.status != http.StatusOK || !strings.Contains(p.body, `<tr class="delivery" data-state="dead">`) ||
		!strings.Contains(p.body, `<td class="num">502</td>`) || !strings.Contains(p.body, "死信") {
		t.Fatalf("dead letters: %d\n%s", p.status, p.body)
	}
	if strings.Contains(p.body, `id="replay-form"`) || !strings.Contains(p.body, "只有管理员可以重新投递死信") {
		t.Errorf("an auditor is offered the replay:\n%s", p.body)
	}
	// The auditor was shown a partner's deliveries: a staff read, recorded
	// with the console route it came by.
	if acts := h.readActs(service.ActDeliveriesListed); len(acts) != 1 || acts[0].Actor != auditorID ||
		acts[0].Details["via"] != "console GET /console/deliveries" {
		t.Errorf("deliveries_listed acts: %+v", acts)
	}
	if p := ab.post("/console/deliveries/replay", url.Values{"csrf": {atoken}, "partner": {bank.ClientID}, "all": {"1"}}); p.status != http.StatusForbidden {
		t.Errorf("an auditor's replay: %d", p.status)
	}
	// The dead letter's act opens from its row.
	if m := regexp.MustCompile(`href="/console/acts\?(kind=webhook_dead_lettered&amp;target=[^"]+)"`).FindStringSubmatch(p.body); m == nil {
		t.Errorf("no link to the dead letter's act:\n%s", p.body)
	} else if a := ab.get("/console/acts?" + strings.ReplaceAll(m[1], "&amp;", "&")); len(actsOf(a)) != 1 {
		t.Errorf("the dead letter's act: %v\n%s", actsOf(a), a.body)
	}

	// The administrator replays: nothing ticked is refused; all of them
	// is done once.
	b, token := h.signedIn(adminID, adminSecret)
	p = b.get(back)
	if !strings.Contains(p.body, `id="replay-form"`) || !strings.Contains(p.body, `name="event_ids"`) {
		t.Fatalf("no replay form:\n%s", p.body)
	}
	if p := b.post("/console/deliveries/replay", url.Values{"csrf": {token}, "nonce": {formNonce(t, p, "replay-form")},
		"partner": {bank.ClientID}, "all": {"0"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "<code>event_ids</code>") {
		t.Errorf("a replay of nothing: %d\n%s", p.status, p.body)
	}
	if p := b.post("/console/deliveries/replay", url.Values{"nonce": {formNonce(t, b.get(back), "replay-form")},
		"partner": {bank.ClientID}, "all": {"1"}}); p.status != http.StatusForbidden {
		t.Errorf("a replay without the CSRF token: %d", p.status)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	form := url.Values{"csrf": {token}, "nonce": {formNonce(t, b.get(back), "replay-form")}, "partner": {bank.ClientID}, "all": {"1"}}
	p = b.post("/console/deliveries/replay", form)
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "done=deliveries_replayed") {
		t.Fatalf("replay: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
	if again := b.post("/console/deliveries/replay", form); again.status != http.StatusConflict {
		t.Errorf("the same form again: %d", again.status)
	}
	if n := h.actCount(service.ActWebhookReplayed); n != 1 {
		t.Errorf("%d replays recorded", n)
	}
	done := b.get(p.header.Get("Location"))
	if !strings.Contains(done.body, "死信已重新投递") || !strings.Contains(done.body, `<tr class="delivery" data-state="pending">`) {
		t.Errorf("after the replay:\n%s", done.body)
	}
	a := b.get("/console/acts?kind=webhook_replayed&actor=" + adminID)
	if got := actsOf(a); len(got) != 1 || !strings.Contains(a.body, "<code>"+bank.ClientID+"</code>") {
		t.Errorf("the replay's act: %v\n%s", got, a.body)
	}
	// Tried again, now delivered, with its act.
	deliver()
	p = b.get("/console/deliveries?partner=" + bank.ClientID + "&state=delivered")
	if !strings.Contains(p.body, `<tr class="delivery" data-state="delivered">`) || !strings.Contains(p.body, "kind=webhook_delivered&amp;target=") {
		t.Errorf("delivered:\n%s", p.body)
	}
	if p := b.get("/console/deliveries?state=lost"); p.status != http.StatusBadRequest {
		t.Errorf("an unknown state: %d", p.status)
	}
	b.lang = "en"
	delete(b.cookies, "credgate_console_lang")
	if p := b.get("/console/deliveries"); !strings.Contains(p.body, "<title>Webhooks") || !strings.Contains(p.body, "delivered") {
		t.Errorf("deliveries in English:\n%s", p.body)
	}
}

// Without push or follow-up configured, the pages say so.
func TestViewsSayWhatTheServerDoesNotDo(t *testing.T) {
	h := newHarness(t)
	b, _ := h.signedIn(adminID, adminSecret)
	for path, id := range map[string]string{"/console/deliveries": "deliveries-unavailable", "/console/overdue": "overdue-unavailable"} {
		if p := b.get(path); p.status != http.StatusOK || !strings.Contains(p.body, `id="`+id+`"`) {
			t.Errorf("%s: %d\n%s", path, p.status, p.body)
		}
	}
}

// The overdue page: checks without feedback past their due date, counted
// per partner, then listed, of one partner when chosen; the subject is on
// the check's page only, neither in the list nor in an address.
func TestOverduePageListsPerPartner(t *testing.T) {
	h := newViewsHarness(t, 30*24*time.Hour)
	ctx := context.Background()
	subject := testenv.USCC(t, "91110108MA01FD700")
	h.listedNow(subject)
	bank, office := h.partnerCaller("某银行"), h.partnerCaller("某县行政审批局")
	for _, c := range []service.Caller{bank, bank, office} {
		if _, err := h.checker.Check(ctx, c, service.CheckRequest{Subject: subject, Action: "government_procurement"}); err != nil {
			t.Fatal(err)
		}
	}
	auditorID, auditorSecret := h.newPartner(service.RoleAuditor)
	b, _ := h.signedIn(auditorID, auditorSecret)
	p := b.get("/console/overdue")
	perPartner := regexp.MustCompile(`data-partner="([^"]+)"><td>.*?<td class="num">(\d+)</td>`).FindAllStringSubmatch(p.body, -1)
	if p.status != http.StatusOK || len(perPartner) != 2 || perPartner[0][1] != bank.ClientID || perPartner[0][2] != "2" ||
		perPartner[1][1] != office.ClientID || perPartner[1][2] != "1" {
		t.Fatalf("per partner %v: %d\n%s", perPartner, p.status, p.body)
	}
	if n := strings.Count(p.body, `<tr class="overdue">`); n != 3 {
		t.Errorf("%d overdue checks listed", n)
	}
	// The list names checks, not subjects: the subject is on the check's
	// page, whose opening is a recorded read.
	if strings.Contains(p.body, subject) {
		t.Error("the overdue list shows the subject's ID number")
	}
	p = b.get("/console/overdue?partner=" + bank.ClientID)
	if n := strings.Count(p.body, `<tr class="overdue">`); n != 2 || strings.Contains(p.body, `id="overdue-partners"`) {
		t.Errorf("the bank's: %d\n%s", n, p.body)
	}
	if p := b.get("/console/overdue?after=x"); p.status != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d", p.status)
	}
	// A check's row opens its record.
	if m := regexp.MustCompile(`href="/console/evidence\?check=([^"]+)"`).FindStringSubmatch(p.body); m == nil {
		t.Error("no link to a check")
	} else if ev := b.get("/console/evidence?check=" + m[1]); ev.status != http.StatusOK || !strings.Contains(ev.body, `id="check"`) {
		t.Errorf("the check: %d", ev.status)
	}
	b.lang = "en"
	delete(b.cookies, "credgate_console_lang")
	if p := b.get("/console/overdue"); !strings.Contains(p.body, "<title>Overdue feedback") || !strings.Contains(p.body, "Working days overdue") {
		t.Errorf("overdue in English:\n%s", p.body)
	}
	// The partner's page links to its deliveries and overdue feedback.
	if p := b.get("/console/partners/" + bank.ClientID); !strings.Contains(p.body, `href="/console/overdue?partner=`+bank.ClientID+`"`) ||
		!strings.Contains(p.body, `href="/console/deliveries?partner=`+bank.ClientID+`"`) {
		t.Errorf("the partner's page does not link to its views:\n%s", p.body)
	}
}
