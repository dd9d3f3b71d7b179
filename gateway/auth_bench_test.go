package gateway_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/service"
)

// authBench is the gateway over SQLite with one partner whose quota is
// out of the way, for measuring what authentication costs a check.
type authBench struct {
	handler http.Handler
	tokens  *access.Tokens
	partner service.Partner
	cred    string
	body    []byte
}

func newAuthBench(b *testing.B) *authBench {
	b.Helper()
	cat, st, app := sqlitetest.OpenWithEvidence(b)
	bp := newBenchPartner(b, st, cat, "bank_credit", "1000000000-S")
	srv := gateway.New(service.NewChecker(cat, st, app, st), service.NewEntries(st, cat), bp.partners, bp.tokens)
	body, _ := json.Marshal(checkBody("914403001922038216", "bank_credit"))
	return &authBench{handler: srv.Handler(), tokens: bp.tokens, partner: bp.partner, cred: bp.cred, body: body}
}

func (ab *authBench) check(b *testing.B, tok string) {
	req := httptest.NewRequest(http.MethodPost, "/v1/checks", bytes.NewReader(ab.body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	ab.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("check: %d %s", rec.Code, rec.Body)
	}
}

// BenchmarkCheckAuth measures check throughput, every check durably
// recorded, with authentication on in its two regimes:
//
//   - fresh_token: every request brings a token never seen before, so the
//     Ed25519 signature and the claims are verified on the request path;
//   - cached_token: the partner reuses its token (as clients do for its 15
//     minutes), already verified and found in the cache by its SHA-256.
//
// The ratio is what verifying a token would cost every check without the
// cache. Run: go test -run '^$' -bench BenchmarkCheckAuth -benchtime 3s ./gateway
func BenchmarkCheckAuth(b *testing.B) {
	b.Run("cached_token", func(b *testing.B) {
		ab := newAuthBench(b)
		tok, err := ab.tokens.Issue(ab.partner.ClientID, string(ab.partner.Role), ab.cred)
		if err != nil {
			b.Fatal(err)
		}
		ab.check(b, tok) // verified once, then cached
		b.SetParallelism(8)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ab.check(b, tok)
			}
		})
	})
	b.Run("fresh_token", func(b *testing.B) {
		ab := newAuthBench(b)
		toks := make([]string, b.N)
		for i := range toks {
			var err error
			if toks[i], err = ab.tokens.Issue(ab.partner.ClientID, string(ab.partner.Role), ab.cred); err != nil {
				b.Fatal(err)
			}
		}
		var next atomic.Int64
		b.SetParallelism(8)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ab.check(b, toks[next.Add(1)-1])
			}
		})
	})
}

// BenchmarkVerify isolates token verification: a cache hit against a full
// verification (signature, algorithm, type, claims).
func BenchmarkVerify(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tokens := access.NewTokens(key)
	p := service.Partner{ClientID: "cg_bench", Role: service.RolePartner}
	b.Run("cached", func(b *testing.B) {
		tok, _ := tokens.Issue(p.ClientID, string(p.Role), "sec_bench")
		if _, err := tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := tokens.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			toks[i], _ = tokens.Issue(p.ClientID, string(p.Role), "sec_bench")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := tokens.Verify(toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
