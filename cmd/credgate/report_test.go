package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// apiServer is the gateway over SQLite with feedback, statistics,
// coverage and commitments wired by followUp, as serve wires them.
func apiServer(t *testing.T, adminID, adminSecret string) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	audit := service.NewAudit(app)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(audit), service.WithSecretCost(testenv.SecretCost()))
	if _, err := partners.EnsureAdmin(ctx, adminID, adminSecret); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	entries := service.NewEntries(st, cat, service.WithEntriesAudit(audit))
	checker := service.NewChecker(cat, st, app, st)
	lifecycle := service.NewLifecycle(entries, st)
	followUpOpt, _ := followUp(cat, checker, app, st, audit, lifecycle)
	srv := gateway.New(checker, entries, partners, access.NewTokens(key), gateway.WithLifecycle(lifecycle), followUpOpt)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func runArgs(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestFollowUpCommands(t *testing.T) {
	t.Parallel()
	const adminID, adminSecret = "admin", "admin-secret-for-tests-0123456789"
	ts := apiServer(t, adminID, adminSecret)
	ctx := context.Background()
	dir := t.TempDir()
	admin, _ := client.New(ts.URL, client.WithClientSecret(adminID, adminSecret))
	now := time.Now().UTC()
	entry, _ := json.Marshal(map[string]any{"subject_id": "91350100M000100Y43", "list": "safety_production_blacklist",
		"originating_department": "应急管理部", "reason": "发生重大生产安全责任事故", "legal_basis": "《安全生产法》",
		"decided_at": now.Add(-72 * time.Hour), "published_at": now.Add(-48 * time.Hour)})
	if err := admin.Do(ctx, http.MethodPost, "/v1/admin/entries", entry, "", nil); err != nil {
		t.Fatal(err)
	}
	p, err := admin.CreatePartner(ctx, client.PartnerSpec{Name: "某市公共资源交易中心", Actions: []string{"government_procurement"}})
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "partner.json")
	b, _ := json.Marshal(map[string]string{"client_id": p.ClientID, "client_secret": p.ClientSecret})
	_ = os.WriteFile(creds, b, 0o600)
	partner, _ := client.New(ts.URL, client.WithClientSecret(p.ClientID, p.ClientSecret))
	ans, err := partner.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: "91350100M000100Y43"}, Action: "government_procurement"})
	if err != nil {
		t.Fatal(err)
	}
	checkID, fb := refusalOf(t, ans.Raw)
	fbFile := filepath.Join(dir, "feedback.json")
	_ = os.WriteFile(fbFile, fb, 0o600)
	common := []string{"--url", ts.URL, "--credentials", creds}
	adminCreds := filepath.Join(dir, "admin.json")
	b, _ = json.Marshal(map[string]string{"client_id": adminID, "client_secret": adminSecret})
	_ = os.WriteFile(adminCreds, b, 0o600)
	asAdmin := []string{"--url", ts.URL, "--credentials", adminCreds}

	if code, out, errOut := runArgs(append([]string{"feedback", "submit", checkID, "--file", fbFile}, common...)...); code != 0 ||
		!strings.Contains(out, `"decision": "refused"`) {
		t.Fatalf("feedback submit: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"feedback", "submit", checkID, "--file", fbFile}, common...)...); code != 1 ||
		!strings.Contains(errOut, "feedback_exists") {
		t.Fatalf("second feedback: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"feedback", "show", checkID}, common...)...); code != 0 ||
		!strings.Contains(out, checkID) {
		t.Fatalf("feedback show: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"feedback", "overdue"}, asAdmin...)...); code != 0 ||
		!strings.Contains(out, "0 checks with overdue feedback") {
		t.Fatalf("feedback overdue: exit %d\n%s%s", code, out, errOut)
	}
	day := time.Now().In(time.FixedZone("CST", 8*3600))
	if code, out, errOut := runArgs(append([]string{"stats", "--by", "partner", "--from", day.Format(time.DateOnly),
		"--to", day.AddDate(0, 0, 1).Format(time.DateOnly)}, asAdmin...)...); code != 0 || !strings.Contains(out, p.ClientID) {
		t.Fatalf("stats: exit %d\n%s%s", code, out, errOut)
	}
	month := day.Format("2006-01")
	if code, out, errOut := runArgs(append([]string{"report", "monthly", "--month", month}, asAdmin...)...); code != 0 ||
		!strings.Contains(out, month+",total,,1,") {
		t.Fatalf("report: exit %d\n%s%s", code, out, errOut)
	}
	approvals := filepath.Join(dir, "approvals.csv")
	_ = os.WriteFile(approvals, []byte("subject_id,action,approved_at,reference\n"+
		"91350100M000100Y43,government_procurement,"+time.Now().Add(time.Minute).UTC().Format(time.RFC3339)+",采购项目 2026-118\n"+
		"914403001922038216,government_procurement,"+time.Now().UTC().Format(time.RFC3339)+",采购项目 2026-119\n"), 0o600)
	if code, out, errOut := runArgs(append([]string{"coverage", approvals}, common...)...); code != 0 ||
		!strings.Contains(out, "2 approvals: 1 checked (50.00%), 1 without a check, 1 unexplained") {
		t.Fatalf("coverage: exit %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{{"feedback", "--help"}, {"stats", "--help"}, {"report", "--help"}, {"coverage", "--help"}} {
		if code, out, errOut := runArgs(args...); code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if code, _, _ := runArgs("report", "yearly"); code != 2 {
		t.Errorf("report yearly: exit %d, want 2", code)
	}
}

// refusalOf is the feedback on a check's answer (raw) that the
// procurement was refused, every measure the answer applied taken,
// decided when the check was made; and the check's id.
func refusalOf(t *testing.T, raw []byte) (checkID string, feedback []byte) {
	t.Helper()
	var answer struct {
		CheckID   string `json:"check_id"`
		CheckedAt string `json:"checked_at"`
		Measures  []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"measures"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatal(err)
	}
	var ms []map[string]any
	for _, m := range answer.Measures {
		if m.Status == "applied" {
			ms = append(ms, map[string]any{"id": m.ID, "applied": true})
		}
	}
	fb, err := json.Marshal(map[string]any{"decision": "refused", "measures": ms, "document": "采购项目 2026-118 资格审查意见",
		"decided_at": answer.CheckedAt})
	if err != nil {
		t.Fatal(err)
	}
	return answer.CheckID, fb
}
