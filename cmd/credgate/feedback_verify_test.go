package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/testenv"
)

// credgate verify checks a feedback receipt offline, as it checks a
// check's: the real server records the partner's feedback in the evidence
// log, its receipt verifies under the published key with nothing but the
// file, and the same receipt with its record altered does not.
func TestVerifyFeedbackReceipt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ctx := context.Background()
	srv := startServer(t, buildBinary(t), t.TempDir())
	admin, err := client.New(srv.base, client.WithClientSecret(testAdminID, testAdminSecret))
	if err != nil {
		t.Fatal(err)
	}
	subject := testenv.USCC(t, "91110108MA01FBWR1")
	entry, _ := json.Marshal(map[string]any{"subject_id": subject, "list": "safety_production_blacklist",
		"originating_department": "应急管理部", "reason": "重大事故", "legal_basis": "《安全生产法》",
		"decided_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-02T00:00:00Z"})
	if err := admin.Do(ctx, http.MethodPost, "/v1/admin/entries", entry, "", nil); err != nil {
		t.Fatal(err)
	}
	p, err := admin.CreatePartner(ctx, client.PartnerSpec{Name: "某市公共资源交易中心", Actions: []string{"government_procurement"}})
	if err != nil {
		t.Fatal(err)
	}
	partner, _ := client.New(srv.base, client.WithClientSecret(p.ClientID, p.ClientSecret))
	ans, err := partner.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: subject}, Action: "government_procurement"})
	if err != nil {
		t.Fatal(err)
	}
	checkID, fb := refusalOf(t, ans.Raw)
	out, err := partner.SubmitFeedback(ctx, checkID, fb)
	if err != nil {
		t.Fatal(err)
	}
	var recorded struct {
		FeedbackID string `json:"feedback_id"`
	}
	if err := json.Unmarshal(out, &recorded); err != nil || recorded.FeedbackID == "" {
		t.Fatalf("feedback answer %s: %v", out, err)
	}
	receipt, err := partner.Receipt(ctx, recorded.FeedbackID)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := partner.EvidenceKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keysFile, good, bad := filepath.Join(dir, "keys.json"), filepath.Join(dir, "feedback-receipt.json"), filepath.Join(dir, "altered.json")
	kb, _ := json.Marshal(keys)
	_ = os.WriteFile(keysFile, kb, 0o600)
	_ = os.WriteFile(good, receipt, 0o600)
	var doc map[string]any
	if err := json.Unmarshal(receipt, &doc); err != nil {
		t.Fatal(err)
	}
	rec, _ := doc["record"].(map[string]any)
	if rec == nil {
		t.Fatalf("receipt without a record: %s", receipt)
	}
	rec["partner"] = "someone-else"
	ab, _ := json.Marshal(doc)
	_ = os.WriteFile(bad, ab, 0o600)
	if code, out := runCLI("verify", "--key", keysFile, good); code != 0 || !strings.Contains(out, "OK: feedback record") {
		t.Fatalf("feedback receipt: exit %d\n%s", code, out)
	}
	if code, out := runCLI("verify", "--key", keysFile, bad); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("altered feedback receipt: exit %d\n%s", code, out)
	}
}
