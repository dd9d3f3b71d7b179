package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// Answers are written from reused buffers (answerbuf.go): checks answered
// at once, restricted and clear ones mixed, each get their own subject,
// outcome and receipt, never bytes of another answer.
func TestConcurrentAnswersKeepTheirOwnBytes(t *testing.T) {
	h := newHarness(t)
	listed := testenv.USCC(t, "91110108MA01ABCD1")
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(listed)); res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	_, tok := h.partner("并发", "government_procurement")
	subjects := []string{listed}
	for i := range 5 {
		subjects = append(subjects, testenv.USCC(t, fmt.Sprintf("91310000MA1FL%04d", i)))
	}
	const workers, each = 6, 20
	var (
		mu      sync.Mutex
		indexes = map[float64]bool{}
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				subject := subjects[(w+i)%len(subjects)]
				body, _ := json.Marshal(checkBody(subject, "government_procurement"))
				req := httptest.NewRequest(http.MethodPost, "/v1/checks", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.handler.ServeHTTP(rec, req)
				var ans struct {
					Subject struct{ ID string } `json:"subject"`
					Outcome string              `json:"outcome"`
					Receipt struct {
						LogIndex   float64 `json:"log_index"`
						RecordHash string  `json:"record_hash"`
					} `json:"receipt"`
				}
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &ans) != nil {
					t.Errorf("check %s: %d %s", subject, rec.Code, rec.Body)
					return
				}
				if ans.Subject.ID != subject || (ans.Outcome == "clear") == (subject == listed) || len(ans.Receipt.RecordHash) != 64 {
					t.Errorf("check %s: answered %s", subject, rec.Body)
				}
				mu.Lock()
				if indexes[ans.Receipt.LogIndex] {
					t.Errorf("log index %v answered twice", ans.Receipt.LogIndex)
				}
				indexes[ans.Receipt.LogIndex] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
