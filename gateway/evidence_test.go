package gateway_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

const testEvidenceOrigin = "credgate.test/evidence"

// newTestEvidenceLog is the evidence log the harness mounts: a fresh key,
// checkpoints on demand only (no Run goroutine), so tests are
// deterministic.
func newTestEvidenceLog(t *testing.T, st service.Store) *evidence.Log {
	t.Helper()
	l := evidence.NewLog(st, testenv.Signer(t, testEvidenceOrigin), evidence.WithMinCheckpointGap(0))
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// auditorToken registers an auditor through the service (its credential
// lifecycle is the partner API's) and returns a token.
func (h *harness) auditorToken() string {
	h.t.Helper()
	p, secret, err := service.NewPartners(h.store, h.catalog, service.WithSecretCost(testenv.SecretCost())).Create(context.Background(),
		service.NewPartnerInput{Name: "审计署", Role: service.RoleAuditor})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.token(p.ClientID, secret)
}

// verifiers fetches the log's keys anonymously, as an auditor would.
func (h *harness) verifiers() note.Verifiers {
	h.t.Helper()
	res := h.doJSON(http.MethodGet, "/v1/evidence/keys", "", nil)
	if res.Status != http.StatusOK {
		h.t.Fatalf("keys: %d %s", res.Status, res.Body)
	}
	var doc struct {
		Origin string `json:"origin"`
		Keys   []struct {
			Key     string `json:"key"`
			Current bool   `json:"current"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		h.t.Fatal(err)
	}
	if doc.Origin != testEvidenceOrigin || len(doc.Keys) != 1 || !doc.Keys[0].Current {
		h.t.Fatalf("keys: %s", res.Body)
	}
	vs, err := evidence.Verifiers(doc.Keys[0].Key)
	if err != nil {
		h.t.Fatal(err)
	}
	return vs
}

func (h *harness) check(token, subject, action string) map[string]any {
	h.t.Helper()
	res := h.doJSON(http.MethodPost, "/v1/checks", token, map[string]any{"subject": map[string]string{"id": subject}, "action": action})
	if res.Status != http.StatusOK {
		h.t.Fatalf("check: %d %s", res.Status, res.Body)
	}
	return res.json(h.t)
}

func (h *harness) receipt(token, id string) (response, evidence.Receipt) {
	h.t.Helper()
	res := h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+id, token, nil)
	var r evidence.Receipt
	if res.Status == http.StatusOK {
		var err error
		if r, err = evidence.ParseReceipt(res.Body); err != nil {
			h.t.Fatalf("receipt does not parse: %v", err)
		}
	}
	return res, r
}

const evidenceSubject = "91350100M000100Y43"

func TestEvidenceReceipts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, bank := h.partner("某银行", "bank_credit")
	_, other := h.partner("某市交易中心", "government_procurement")
	vs := h.verifiers()

	ans := h.check(bank, evidenceSubject, "bank_credit")
	id := ans["check_id"].(string)
	rc := ans["receipt"].(map[string]any)

	res, r := h.receipt(bank, id)
	if res.Status != http.StatusOK {
		t.Fatalf("own receipt: %d %s", res.Status, res.Body)
	}
	v, err := evidence.VerifyReceipt(r, vs)
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	// The receipt proves what the partner was answered, and agrees with
	// the answer's own receipt.
	if v.Record.ID != id || float64(v.Record.Index) != rc["log_index"] || r.RecordHash != rc["record_hash"] || r.LeafHash != rc["leaf_hash"] {
		t.Fatalf("receipt %+v does not match the answer's %v", r, rc)
	}
	var body map[string]any
	if err := json.Unmarshal(v.Record.Body, &body); err != nil || body["check_id"] != id || body["outcome"] != ans["outcome"] {
		t.Fatalf("receipt body %s", v.Record.Body)
	}

	// Another partner cannot learn the check exists; admins and auditors
	// read any receipt.
	res, _ = h.receipt(other, id)
	problemCode(t, res, http.StatusNotFound, "not_found")
	for name, tok := range map[string]string{"admin": h.adminTok, "auditor": h.auditorToken()} {
		res, r := h.receipt(tok, id)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", name, res.Status, res.Body)
		}
		if _, err := evidence.VerifyReceipt(r, vs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	res, _ = h.receipt(bank, "no-such-check")
	problemCode(t, res, http.StatusNotFound, "not_found")
	res, _ = h.receipt(bank, strings.Repeat("x", 300))
	problemCode(t, res, http.StatusNotFound, "not_found")
	res, _ = h.receipt("", id)
	problemCode(t, res, http.StatusUnauthorized, "missing_token")

	// A batch's answers each have a receipt that verifies.
	bres := h.doJSON(http.MethodPost, "/v1/checks:batch", bank, map[string]any{"action": "bank_credit",
		"subjects": []map[string]string{{"id": evidenceSubject}, {"id": "914403001922038216"}}})
	if bres.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", bres.Status, bres.Body)
	}
	var batch struct {
		Results []struct {
			Check struct {
				CheckID string `json:"check_id"`
			} `json:"check"`
		} `json:"results"`
	}
	_ = json.Unmarshal(bres.Body, &batch)
	for _, it := range batch.Results {
		res, r := h.receipt(bank, it.Check.CheckID)
		if res.Status != http.StatusOK {
			t.Fatalf("batch receipt: %d %s", res.Status, res.Body)
		}
		if _, err := evidence.VerifyReceipt(r, vs); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEvidenceCheckpointAndConsistency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, bank := h.partner("某银行", "bank_credit")
	vs := h.verifiers()

	checkpoint := func() evidence.SignedCheckpoint {
		t.Helper()
		res := h.doJSON(http.MethodGet, "/v1/evidence/checkpoint", "", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("checkpoint: %d %s", res.Status, res.Body)
		}
		m := res.json(t)
		cp, err := evidence.OpenCheckpoint([]byte(m["checkpoint"].(string)), vs, testEvidenceOrigin)
		if err != nil {
			t.Fatal(err)
		}
		if m["size"] != float64(cp.Size) || m["root_hash"] != base64.StdEncoding.EncodeToString(cp.Root[:]) {
			t.Fatalf("checkpoint fields disagree with its note: %s", res.Body)
		}
		return cp
	}
	first := checkpoint()
	for range 3 {
		id := h.check(bank, evidenceSubject, "bank_credit")["check_id"].(string)
		h.receipt(bank, id) // signs a checkpoint covering it
	}
	second := checkpoint()
	if second.Size <= first.Size {
		t.Fatalf("checkpoint did not grow: %d then %d", first.Size, second.Size)
	}
	res := h.doJSON(http.MethodGet, fmt.Sprintf("/v1/evidence/consistency?from=%d&to=%d", first.Size, second.Size), "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("consistency: %d %s", res.Status, res.Body)
	}
	var c struct {
		Proof []string `json:"proof"`
	}
	_ = json.Unmarshal(res.Body, &c)
	p := make([][evidence.HashSize]byte, len(c.Proof))
	for i, s := range c.Proof {
		b, _ := base64.StdEncoding.DecodeString(s)
		p[i] = [evidence.HashSize]byte(b)
	}
	if err := evidence.VerifyConsistency(first.Size, second.Size, p, first.Root, second.Root); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}

	for _, q := range []string{"", "?from=1", "?from=x&to=2", "?from=-1&to=2", "?from=1&to=99999999999999999999"} {
		problemCode(t, h.doJSON(http.MethodGet, "/v1/evidence/consistency"+q, "", nil), http.StatusBadRequest, "invalid_query")
	}
	problemCode(t, h.doJSON(http.MethodGet, fmt.Sprintf("/v1/evidence/consistency?from=0&to=%d", second.Size+5), "", nil),
		http.StatusBadRequest, "tree_size_out_of_range")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/evidence/consistency?from=2&to=1", "", nil),
		http.StatusBadRequest, "tree_size_out_of_range")
}

func TestEvidenceLeaves(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, bank := h.partner("某银行", "bank_credit")
	h.check(bank, evidenceSubject, "bank_credit")
	head, err := h.store.TreeHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/v1/evidence/leaves?from=0&to=%d", head.Size)
	problemCode(t, h.doJSON(http.MethodGet, path, bank, nil), http.StatusForbidden, "forbidden")
	res := h.doJSON(http.MethodGet, path, h.auditorToken(), nil)
	if res.Status != http.StatusOK {
		t.Fatalf("leaves: %d %s", res.Status, res.Body)
	}
	var doc struct {
		Leaves []struct {
			Index    uint64 `json:"index"`
			TreeLeaf string `json:"tree_leaf"`
			Body     string `json:"body"`
			Record   *struct {
				ID string `json:"id"`
			} `json:"record"`
		} `json:"leaves"`
	}
	_ = json.Unmarshal(res.Body, &doc)
	if uint64(len(doc.Leaves)) != head.Size {
		t.Fatalf("%d leaves for a log of %d", len(doc.Leaves), head.Size)
	}
	for i, l := range doc.Leaves {
		if l.Index != uint64(i) || l.Body != "intact" || l.Record == nil {
			t.Fatalf("leaf %d: %+v", i, l)
		}
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/evidence/leaves?from=0&to=1001", h.adminTok, nil),
		http.StatusBadRequest, "tree_size_out_of_range")
}

// TestEvidenceUnavailableFailsClosed: when the store cannot commit, the
// check is refused with 503 evidence_unavailable, never answered.
func TestEvidenceUnavailableFailsClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, bank := h.partner("某银行", "bank_credit")
	h.check(bank, evidenceSubject, "bank_credit")
	// Break the writer only, as a full disk would.
	db, err := sql.Open("sqlite", filepath.Join(h.dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER evidence_disk_full BEFORE INSERT ON evidence
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	before, _ := h.store.TreeHead(context.Background())
	res := h.doJSON(http.MethodPost, "/v1/checks", bank, map[string]any{"subject": map[string]string{"id": evidenceSubject}, "action": "bank_credit"})
	problemCode(t, res, http.StatusServiceUnavailable, "evidence_unavailable")
	if after, _ := h.store.TreeHead(context.Background()); after.Size != before.Size {
		t.Fatalf("the log grew from %d to %d on a refused check", before.Size, after.Size)
	}
	// Recovery: once the store takes writes again, checks are answered.
	if _, err := db.Exec(`DROP TRIGGER evidence_disk_full`); err != nil {
		t.Fatal(err)
	}
	h.check(bank, evidenceSubject, "bank_credit")
}
