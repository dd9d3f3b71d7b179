package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// POST /v1/checks:batch with Idempotency-Key: a bank's batch retried after
// a lost answer replays the first answer byte for byte (every subject's
// check and problem) with Idempotent-Replayed: true and records nothing;
// the key with another batch, or with a check alone, is 422
// idempotency_key_reused.

// batch422 is the response openapi.yaml's /v1/checks:batch is to document
// (the report of this change gives the text): until it does, the 422
// exchanges of this file are validated against a copy with it added.
const batch422 = `        '422':
          description: '` + "`idempotency_key_reused`" + ` (` + "`field: Idempotency-Key`" + `): the partner sent this key within the last 24 hours with another batch, or with a check alone (` + "`POST /v1/checks`" + `); nothing was recorded. Send a new key for a new batch.'
          headers:
            X-Request-Id:
              $ref: '#/components/headers/X-Request-Id'
          content:
            application/problem+json:
              schema:
                $ref: '#/components/schemas/Problem'
`

// batchContract is openapi.yaml, with batch422 added to /v1/checks:batch
// if it has no 422 yet.
func batchContract(t *testing.T) *contract {
	t.Helper()
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	spec := string(raw)
	start := strings.Index(spec, "\n  /v1/checks:batch:\n")
	end := start + 1 + strings.Index(spec[start+1:], "\n  /v1/")
	section := spec[start:end]
	if !strings.Contains(section, "'422':") {
		at := strings.Index(section, "        '429':\n")
		if start < 0 || at < 0 {
			t.Fatal("openapi.yaml: no /v1/checks:batch with a 429 to add the 422 before")
		}
		section = section[:at] + batch422 + section[at:]
	}
	path := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := os.WriteFile(path, []byte(spec[:start]+section+spec[end:]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseContract(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyedBatch posts body to /v1/checks:batch with the Idempotency-Key key
// (none when nil), the exchange validated against c (the harness's
// contract when nil).
func (h *harness) keyedBatch(c *contract, token string, key []string, body string) response {
	h.t.Helper()
	return h.keyedPost(c, "/v1/checks:batch", token, key, body)
}

func TestCheckBatchIdempotencyKey(t *testing.T) {
	withKey := batchContract(t)
	eachHarnessStore(t, func(t *testing.T, h *harness) {
		p := h.createPartner(map[string]any{"name": "银行筛查", "actions": []string{"bank_credit", "government_procurement"},
			"subject_kinds": []string{"organization"}})
		tok := h.token(p["client_id"].(string), p["client_secret"].(string))
		org1, org2 := testenv.USCC(t, "91350100M00010001"), testenv.USCC(t, "91350100M00010002")
		subjects := func(ids ...string) string {
			b, _ := json.Marshal(ids)
			return strings.NewReplacer(`[`, `[{"id":`, `,`, `},{"id":`, `]`, `}]`).Replace(string(b))
		}
		// A check, an invalid identifier, a person (a kind the partner
		// may not check), and a check: recorded, two problems, recorded.
		body := `{"subjects":` + subjects(org1, "91350100M000100Y4X", "11010519491231002X", org2) +
			`,"action":"bank_credit","reference":"SCREEN-2026-12"}`
		key := []string{`"batch-7f0e9a4c"`}

		before := h.checkRecordCount()
		first := h.keyedBatch(nil, tok, key, body)
		wantRecorded(t, "first", first)
		var ans struct {
			Results []struct {
				Index   int            `json:"index"`
				Check   map[string]any `json:"check"`
				Problem map[string]any `json:"problem"`
			} `json:"results"`
		}
		if err := json.Unmarshal(first.Body, &ans); err != nil || len(ans.Results) != 4 {
			t.Fatalf("answer: %v: %s", err, first.Body)
		}
		r := ans.Results
		if r[0].Check["idempotency_key"] != "batch-7f0e9a4c" || r[3].Check["idempotency_key"] != "batch-7f0e9a4c" ||
			r[1].Problem["code"] != "invalid_subject_id" || r[2].Problem["code"] != "subject_kind_not_allowed" {
			t.Fatalf("results: %s", first.Body)
		}
		base := h.checkRecordCount()
		if base != before+2 {
			t.Fatalf("%d check records after the batch, %d before: want 2 more", base, before)
		}

		// The retry, the key bare this time: the same bytes, problems
		// included, and nothing recorded.
		wantReplayOf(t, h.keyedBatch(nil, tok, []string{"batch-7f0e9a4c"}, body), first)
		// Each check of the batch is the one GET /v1/checks/{id} proves.
		for _, i := range []int{0, 3} {
			res := h.do(http.MethodGet, "/v1/checks/"+r[i].Check["check_id"].(string), tok, "", nil)
			if res.Status != http.StatusOK || !bytes.Contains(first.Body, res.Body[:len(res.Body)-1]) {
				t.Fatalf("GET check %d: %d %s", i, res.Status, res.Body)
			}
		}

		// Another batch under the key: fewer subjects, another order,
		// another subject where a problem was, another reference.
		for _, other := range []string{
			`{"subjects":` + subjects(org1, "91350100M000100Y4X", "11010519491231002X") + `,"action":"bank_credit","reference":"SCREEN-2026-12"}`,
			`{"subjects":` + subjects(org2, "91350100M000100Y4X", "11010519491231002X", org1) + `,"action":"bank_credit","reference":"SCREEN-2026-12"}`,
			`{"subjects":` + subjects(org1, "91350100M000100Y4X", testenv.USCC(t, "91350100M00010003"), org2) + `,"action":"bank_credit","reference":"SCREEN-2026-12"}`,
			`{"subjects":` + subjects(org1, "91350100M000100Y4X", "11010519491231002X", org2) + `,"action":"bank_credit","reference":"SCREEN-2026-13"}`,
			`{"subjects":` + subjects(org1, "91350100M000100Y4X", "11010519491231002X", org2) + `,"action":"government_procurement","reference":"SCREEN-2026-12"}`,
		} {
			pr := problemCode(t, h.keyedBatch(withKey, tok, key, other), http.StatusUnprocessableEntity, "idempotency_key_reused")
			if pr["field"] != "Idempotency-Key" {
				t.Fatalf("field %v", pr["field"])
			}
		}
		// A batch's key sent with a check alone, and the reverse.
		problemCode(t, h.keyedCheck(tok, key, `{"subject":{"id":"`+org1+`"},"action":"bank_credit","reference":"SCREEN-2026-12"}`),
			http.StatusUnprocessableEntity, "idempotency_key_reused")
		if res := h.keyedCheck(tok, []string{"alone-1"}, `{"subject":{"id":"`+org1+`"},"action":"bank_credit"}`); res.Status != http.StatusOK {
			t.Fatalf("a check alone: %d %s", res.Status, res.Body)
		}
		problemCode(t, h.keyedBatch(withKey, tok, []string{"alone-1"}, `{"subjects":`+subjects(org1)+`,"action":"bank_credit"}`),
			http.StatusUnprocessableEntity, "idempotency_key_reused")
		// Malformed keys.
		for _, bad := range [][]string{{""}, {"tab\there"}, {strings.Repeat("k", 256)}, {"a", "b"}} {
			problemCode(t, h.keyedBatch(nil, tok, bad, body), http.StatusBadRequest, "invalid_idempotency_key")
		}
		if n := h.checkRecordCount(); n != base+1 {
			t.Fatalf("%d check records after refusals, want %d (the check alone)", n, base+1)
		}

		// Concurrent batches with a new key: recorded once.
		const n = 4
		h.concurrentKeyed("/v1/checks:batch", tok, "concurrent-batch", body, n)
		if c := h.checkRecordCount(); c != base+3 {
			t.Fatalf("%d check records after %d concurrent batches with one key, want %d", c, n, base+3)
		}

		// Without the key, every batch is recorded, without the header.
		h.keylessTwice("/v1/checks:batch", tok, body)
		if c := h.checkRecordCount(); c != base+7 {
			t.Fatalf("%d check records, want %d", c, base+7)
		}
	})
}

// TestCheckBatchIdempotencyKeyStoreAway: a keyed batch whose records cannot
// be committed is 503 store_unavailable with Retry-After (never spooled),
// where a keyless one is evidence_unavailable as before.
func TestCheckBatchIdempotencyKeyStoreAway(t *testing.T) {
	testKeyedStoreAway(t, "/v1/checks:batch", `{"subjects":[{"id":"91350100M000100Y43"}],"action":"bank_credit"}`)
}
