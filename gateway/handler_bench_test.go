package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// BenchmarkCheckHandler measures one check through the whole handler path
// as `credgate bench` sends it (the same body, a partner with a quota far
// above the rate): the gin router and middleware, authentication with a
// cached token, the quota, the strict decode, the cache tier's lookup
// (local hit), the decision, the evidence record and the receipt, and the
// answer's encoding. The evidence log commits in memory, through the
// spool as serve's checks do, so the store's commit is not timed. Beside it, the no-op endpoint the bench compares
// checks with:
//
//   - clear: a subject on no list (nine checks in ten in the bench);
//   - listed: a subject on the bench's black list (restricted);
//   - noop: POST /bench/noop with the same body.
//
// Run: go test -run '^$' -bench BenchmarkCheckHandler -benchmem -count 6 ./gateway
func BenchmarkCheckHandler(b *testing.B) {
	hb := newHandlerBench(b)
	for _, tc := range []struct {
		name, path, subject string
	}{
		{"clear", "/v1/checks", hb.clear},
		{"listed", "/v1/checks", hb.listed},
		{"noop", "/bench/noop", hb.clear},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body, _ := json.Marshal(map[string]any{
				"subject": map[string]string{"id": tc.subject}, "action": "government_procurement", "reference": "credgate-bench",
			})
			hb.do(b, tc.path, body) // the token verified once, then cached
			b.ReportAllocs()
			for b.Loop() {
				hb.do(b, tc.path, body)
			}
		})
	}
}

type handlerBench struct {
	handler       http.Handler
	auth          string
	clear, listed string
}

func newHandlerBench(b *testing.B) *handlerBench {
	b.Helper()
	ctx := context.Background()
	cat, st := sqlitetest.Open(b)
	clear, listed := benchUSCC(b, 1), benchUSCC(b, 2)
	entries := service.NewEntries(st, cat)
	now := time.Now().UTC()
	actx := service.WithActor(ctx, service.Actor{ClientID: "bench-admin", Role: service.RoleAdmin})
	if _, err := entries.Create(actx, service.EntryInput{
		Subject: listed, List: "safety_production_blacklist", OriginatingDepartment: "应急管理部",
		Reason: "credgate bench: 发生重大生产安全责任事故", LegalBasis: "《安全生产法》", EvidenceRefs: []string{"credgate-bench"},
		DecidedAt: now.Add(-48 * time.Hour), PublishedAt: now.Add(-24 * time.Hour),
	}); err != nil {
		b.Fatal(err)
	}
	tier, err := cache.New(st, st)
	if err != nil {
		b.Fatal(err)
	}
	tier.Start(ctx)
	b.Cleanup(tier.Close)
	app := evidence.NewAppender(&memSink{})
	b.Cleanup(app.Close)
	// Checks append through the spool, as serve's do by default.
	sp, err := evidence.OpenSpool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sp.Close() })
	checkLog := service.NewSpoolingLog(app, sp, testenv.Signer(b, "credgate.bench/evidence"), st)
	bp := newBenchPartner(b, st, cat, "government_procurement", "1000000000-M")
	partners, tokens, p := bp.partners, bp.tokens, bp.partner
	tok, err := tokens.Issue(p.ClientID, string(p.Role), bp.cred)
	if err != nil {
		b.Fatal(err)
	}
	srv := gateway.New(service.NewChecker(cat, tier, checkLog, st), entries, partners, tokens, gateway.WithNoopEndpoint())
	return &handlerBench{handler: srv.Handler(), auth: "Bearer " + tok, clear: clear, listed: listed}
}

// do sends body to path and fails unless it is answered 200 with the
// outcome the subject must have.
func (hb *handlerBench) do(b *testing.B, path string, body []byte) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", hb.auth)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	hb.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
	}
	if path != "/v1/checks" {
		return
	}
	clear := bytes.Contains(rec.Body.Bytes(), []byte(`"outcome":"clear"`))
	if clear != bytes.Contains(body, []byte(hb.clear)) {
		b.Fatalf("check: wrong outcome: %s", rec.Body)
	}
}

// benchUSCC is a valid unified social credit code, distinct for each i.
func benchUSCC(b *testing.B, i int) string {
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	return testenv.USCC(b, "91110108MB"+strings.Repeat("0", 6)+string(alphabet[i]))
}
