package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/testenv"
)

// TestDepartmentPushEndToEnd: a department of 国家发展改革委 is subscribed to
// its authority with credgate authorities; an administrator lists a
// subject nobody checked; the department's webhook receives one verified,
// signed event naming the measures of that authority newly in force, and
// its pull feed returns the same event; a department of 城市管理部门, whose
// measures the listing does not touch, receives nothing. An authority the
// catalogue does not name is refused and changes nothing.
func TestDepartmentPushEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) { departmentRun(t, bin, nil) })
	t.Run("postgres", func(t *testing.T) {
		departmentRun(t, bin, []string{"CREDGATE_POSTGRES_URL=" + testenv.FreshDatabase(t, "credgate_dept")})
	})
}

func departmentRun(t *testing.T, bin string, env []string) {
	ctx := context.Background()
	const ndrc, urban = "国家发展改革委", "城市管理部门"
	srv := startServer(t, bin, t.TempDir(), append(env, pushEnv...)...)
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	dir := t.TempDir()
	adminCreds := filepath.Join(dir, "admin.json")
	b, _ := json.Marshal(map[string]string{"client_id": testAdminID, "client_secret": testAdminSecret})
	if err := os.WriteFile(adminCreds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	asAdmin := []string{"--url", srv.base, "--credentials", adminCreds}
	dept := func(name, action, authority string) *client.Client {
		t.Helper()
		code, p, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/partners", admin, map[string]any{"name": name, "actions": []string{action}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("create partner: %d %v %v", code, p, err)
		}
		id := p["client_id"].(string)
		if code, out, errOut := runArgs(append([]string{"authorities", "set", id, authority}, asAdmin...)...); code != 0 ||
			!strings.Contains(out, authority) {
			t.Fatalf("authorities set: exit %d\n%s%s", code, out, errOut)
		}
		c, err := client.New(srv.base, client.WithClientSecret(id, p["client_secret"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ndrcDept := dept("某省发展和改革委员会", "project_approval", ndrc)
	urbanDept := dept("某市城市管理局", "administrative_licensing", urban)
	if code, out, errOut := runArgs(append([]string{"authorities", "set", ndrcDept.ClientID(), "发改委"}, asAdmin...)...); code != 1 ||
		!strings.Contains(errOut, "unknown_authority") {
		t.Fatalf("an unknown authority: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"authorities", "show", ndrcDept.ClientID()}, asAdmin...)...); code != 0 ||
		!strings.Contains(out, "follows:\n  "+ndrc+"\n") {
		t.Fatalf("authorities show after a refused set: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"authorities", "list"}, asAdmin...)...); code != 0 ||
		!strings.Contains(out, ndrc+"\n") || !strings.Contains(out, urban+"\n") {
		t.Fatalf("authorities list: exit %d\n%s%s", code, out, errOut)
	}

	rcv := newReceiver(t)
	var err error
	if rcv.keys, err = ndrcDept.WebhookKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ndrcDept.Do(ctx, http.MethodPut, "/v1/webhook", []byte(`{"url":"http://`+rcv.addr+`/credgate"}`), "", nil); err != nil {
		t.Fatal(err)
	}
	subject := testenv.USCC(t, "91110108MA01PUDP1")
	code, m, err := postJSON(http.DefaultClient, srv.base+"/v1/admin/entries", admin, map[string]any{
		"subject_id": subject, "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "重大事故", "legal_basis": "《安全生产法》",
		"decided_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-02T00:00:00Z",
	})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create entry: %d %v %v", code, m, err)
	}
	ev, _, ok := rcv.waitFor(subject, 10*time.Second)
	if !ok {
		t.Fatalf("no event at the department's webhook; server log:\n%s", srv.logs.String())
	}
	if ev.Kind != "listed" || !slices.Equal(ev.Subscription, []string{"authority"}) || !slices.Equal(ev.Authorities, []string{ndrc}) {
		t.Fatalf("department's event = %+v", ev)
	}
	var named []string
	for _, ch := range ev.Changes {
		for _, ms := range ch.InForce {
			if ms.Authority != ndrc {
				t.Errorf("measure %s of %s told to a department of %s", ms.ID, ms.Authority, ndrc)
			}
			named = append(named, ms.ID)
		}
	}
	if !slices.Contains(named, "sp-02-major-projects") || !slices.Contains(named, "sp-05-concession") {
		t.Fatalf("the event names %v, want the NDRC measures of the safety black list", named)
	}
	page, err := ndrcDept.Events(ctx, "", 100, 0)
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != ev.ID {
		t.Fatalf("the department's pull feed = %+v, %v; want the webhook's event %s", page, err, ev.ID)
	}
	// The fan-out published both departments' events, if any, together.
	other, err := urbanDept.Events(ctx, "", 100, 0)
	if err != nil || len(other.Events) != 0 {
		t.Fatalf("a department of %s was told: %+v, %v", urban, other, err)
	}
	time.Sleep(time.Second) // room for a duplicate delivery to show up
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.count[ev.ID] != 1 || len(rcv.order) != 1 || rcv.rejected != 0 {
		t.Errorf("deliveries %v (%d rejected), want the one event once", rcv.count, rcv.rejected)
	}
}
