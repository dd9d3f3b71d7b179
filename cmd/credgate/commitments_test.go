package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
)

// credgate commitments against a real server: a partner records two
// commitments on its check (容缺受理), lists and shows them, fulfils one and
// breaches the other; a closed commitment cannot change again; the
// administrator lists every partner's by state; bad usage exits 2.
func TestCommitmentsCommands(t *testing.T) {
	t.Parallel()
	const adminID, adminSecret = "admin", "admin-secret-for-tests-0123456789"
	ts := apiServer(t, adminID, adminSecret)
	ctx := context.Background()
	dir := t.TempDir()
	admin, _ := client.New(ts.URL, client.WithClientSecret(adminID, adminSecret))
	const subject = "91350100M000100Y43"
	p, err := admin.CreatePartner(ctx, client.PartnerSpec{Name: "某区行政审批局", Actions: []string{"administrative_licensing"}})
	if err != nil {
		t.Fatal(err)
	}
	partner, _ := client.New(ts.URL, client.WithClientSecret(p.ClientID, p.ClientSecret))
	ans, err := partner.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: subject}, Action: "administrative_licensing"})
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		CheckID string `json:"check_id"`
	}
	_ = json.Unmarshal(ans.Raw, &answer)
	creds := filepath.Join(dir, "partner.json")
	b, _ := json.Marshal(map[string]string{"client_id": p.ClientID, "client_secret": p.ClientSecret})
	_ = os.WriteFile(creds, b, 0o600)
	adminCreds := filepath.Join(dir, "admin.json")
	b, _ = json.Marshal(map[string]string{"client_id": adminID, "client_secret": adminSecret})
	_ = os.WriteFile(adminCreds, b, 0o600)
	asPartner := []string{"--url", ts.URL, "--credentials", creds}
	asAdmin := []string{"--url", ts.URL, "--credentials", adminCreds}
	due := time.Now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, 20).Format(time.DateOnly)
	idRe := regexp.MustCompile(`commitment (\S+): open`)

	var ids []string
	for _, promise := range []string{"20个工作日内补齐营业执照副本", "20个工作日内补齐安全生产许可证"} {
		code, out, errOut := runArgs(append([]string{"commitments", "add", "--subject", subject, "--kind", "missing_materials",
			"--promise", promise, "--due", due, "--check", answer.CheckID}, asPartner...)...)
		m := idRe.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("commitments add: exit %d\n%s%s", code, out, errOut)
		}
		ids = append(ids, m[1])
	}
	if code, out, errOut := runArgs(append([]string{"commitments", "list"}, asPartner...)...); code != 0 ||
		!strings.Contains(out, ids[0]) || !strings.Contains(out, ids[1]) || !strings.Contains(out, "listed: 2") {
		t.Fatalf("commitments list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"commitments", "show", ids[0]}, asPartner...)...); code != 0 ||
		!strings.Contains(out, `"promise": "20个工作日内补齐营业执照副本"`) {
		t.Fatalf("commitments show: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"commitments", "fulfil", ids[0], "--note", "已补齐"}, asPartner...)...); code != 0 ||
		!strings.Contains(out, ids[0]+": fulfilled") {
		t.Fatalf("commitments fulfil: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"commitments", "breach", ids[1], "--note", "逾期未补齐"}, asPartner...)...); code != 0 ||
		!strings.Contains(out, ids[1]+": breached") {
		t.Fatalf("commitments breach: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"commitments", "fulfil", ids[1]}, asPartner...)...); code != 1 ||
		!strings.Contains(errOut, "commitment_closed") {
		t.Fatalf("fulfilling a breached commitment: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(append([]string{"commitments", "list", "--state", "breached", "--partner", p.ClientID, "--json"}, asAdmin...)...); code != 0 ||
		!strings.Contains(out, ids[1]) || strings.Contains(out, ids[0]) {
		t.Fatalf("commitments list --state breached: exit %d\n%s%s", code, out, errOut)
	}
	// The breach is in the evidence log: the record is there to read.
	var view struct {
		State       string `json:"state"`
		StateRecord string `json:"state_record"`
	}
	if err := admin.Do(ctx, http.MethodGet, "/v1/commitments/"+ids[1], nil, "", &view); err != nil || view.State != "breached" || view.StateRecord == "" {
		t.Fatalf("breached commitment = %+v, %v", view, err)
	}
	for _, args := range [][]string{
		{"commitments", "add", "--subject", subject, "--kind", "missing_materials", "--promise", "x", "--due", due}, // neither check nor proceeding
		{"commitments", "show"},
		{"commitments", "renew", ids[0]},
	} {
		if code, out, errOut := runArgs(append(args, asPartner...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
	if code, out, _ := runArgs("commitments", "--help"); code != 0 || !strings.Contains(out, "Usage: credgate commitments") {
		t.Errorf("commitments --help: exit %d\n%s", code, out)
	}
}
