package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// retainedScreening is a harness whose screening results are kept two
// hours, on a clock offset moves on, and the id of a job the bank
// partner (token bank) submitted there, of n organisations numbered from
// prefix (91110108M and a letter), done.
type retainedScreening struct {
	h      *harness
	bank   string
	id     string
	offset *atomic.Int64
}

func newRetainedScreening(t *testing.T, prefix string, n int) retainedScreening {
	t.Helper()
	offset := new(atomic.Int64)
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	h := newHarness(t, withScreenings(), func(c *harnessConfig) {
		c.screeningOpts = append(c.screeningOpts, service.WithScreeningsClock(clock), service.WithScreeningsRetention(2*time.Hour))
	})
	_, bank := h.partner("bank", "bank_credit")
	var file bytes.Buffer
	for i := range n {
		fmt.Fprintf(&file, "{\"id\":%q}\n", testenv.USCC(t, fmt.Sprintf("%s%07d", prefix, i)))
	}
	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file.Bytes())
	if res.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	id := res.json(t)["id"].(string)
	waitFor(t, "the job done", func() bool {
		return h.do(http.MethodGet, "/v1/screenings/"+id, bank, "", nil).json(t)["state"] == "done"
	})
	return retainedScreening{h: h, bank: bank, id: id, offset: offset}
}

// waitFor polls cond until it holds, failing after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
