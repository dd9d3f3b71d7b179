package access_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/internal/testenv"
)

func TestIssueAndVerify(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	clk := testenv.NewClock(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	tokens := access.NewTokens(key, access.WithClock(clk.Now), access.WithTTL(time.Minute))
	tok, err := tokens.Issue("cg_bank", "partner", "sec_1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tokens.Verify(tok)
	if err != nil || c.Subject != "cg_bank" || c.Role != "partner" || c.Cred != "sec_1" {
		t.Fatalf("claims %+v, %v", c, err)
	}
	// Cached now; the cache must not outlive the token.
	if _, err := tokens.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(""); !errors.Is(err, access.ErrMissingToken) {
		t.Fatalf("empty token: %v", err)
	}
	clk.Add(time.Minute + 10*time.Second)
	_, err = tokens.Verify(tok)
	if !errors.Is(err, access.ErrTokenExpired) || !errors.Is(err, access.ErrInvalidToken) {
		t.Fatalf("expired token: %v, want ErrTokenExpired (an ErrInvalidToken)", err)
	}
}

// An expired token is told apart from a forged one only when credgate
// signed it: a forged or otherwise wrong token that is also expired is
// just invalid, so the message reveals nothing to a forger.
func TestExpiredIsNotForged(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tokens := access.NewTokens(key, access.WithClock(func() time.Time { return now }))
	kid := access.KeyID(key.Public().(ed25519.PublicKey))
	sign := func(k ed25519.PrivateKey, edit func(jwt.MapClaims)) string {
		claims := jwt.MapClaims{"iss": "credgate", "aud": "credgate", "sub": "cg_x", "role": "partner", "cred": "sec_1",
			"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix(), "jti": "j"}
		if edit != nil {
			edit(claims)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := tokens.Verify(sign(key, nil)); !errors.Is(err, access.ErrTokenExpired) {
		t.Fatalf("expired token of ours: %v", err)
	}
	for name, tok := range map[string]string{
		"forged and expired":        sign(other, nil),
		"expired, wrong audience":   sign(key, func(c jwt.MapClaims) { c["aud"] = "elsewhere" }),
		"expired, wrong issuer":     sign(key, func(c jwt.MapClaims) { c["iss"] = "evil" }),
		"tampered and expired":      tamper(sign(key, nil)),
		"expired, issued in future": sign(key, func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }),
		"garbage":                   "a.b.c",
	} {
		_, err := tokens.Verify(tok)
		if !errors.Is(err, access.ErrInvalidToken) || errors.Is(err, access.ErrTokenExpired) {
			t.Errorf("%s: %v, want ErrInvalidToken and not ErrTokenExpired", name, err)
		}
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[1])
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return parts[0] + "." + string(b) + "." + parts[2]
}

func TestJWKSPublishesEveryVerificationKey(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	old, _, _ := ed25519.GenerateKey(rand.Reader)
	tokens := access.NewTokens(key, access.WithVerificationKeys(old))
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(tokens.JWKS(), &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS %s: %v", tokens.JWKS(), err)
	}
	if set.Keys[0]["kid"] != tokens.KeyID() {
		t.Fatalf("the signing key is not first: %s", tokens.JWKS())
	}
	for _, k := range set.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["x"] == "" || k["d"] != "" {
			t.Fatalf("key %v", k)
		}
		// Each published key is one ParseJWK accepts, with its own kid.
		pk, _, err := access.ParseJWK(must(json.Marshal(k)))
		if err != nil || pk.ID != k["kid"] {
			t.Fatalf("published key %v does not parse back: %v", k, err)
		}
	}
	// A token signed with the verification-only key verifies.
	oldKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	rotated := access.NewTokens(oldKey)
	verifier := access.NewTokens(key, access.WithVerificationKeys(oldKey.Public().(ed25519.PublicKey)))
	tok, _ := rotated.Issue("cg_x", "partner", "sec_1")
	if _, err := verifier.Verify(tok); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestDecodeSeed(t *testing.T) {
	t.Parallel()
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	want := ed25519.NewKeyFromSeed(seed)
	for _, s := range []string{base64.StdEncoding.EncodeToString(seed), " " + base64.RawURLEncoding.EncodeToString(seed) + "\n"} {
		k, err := access.DecodeSeed(s)
		if err != nil || !k.Equal(want) {
			t.Fatalf("%q: %v", s, err)
		}
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString([]byte("short")), "not a key!"} {
		if _, err := access.DecodeSeed(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	secret, err := access.NewSecret()
	if err != nil || len(secret) != 43 {
		t.Fatalf("secret %q, %v", secret, err)
	}
	hash, err := access.HashSecret(secret, access.DefaultSecretCost())
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q, %v", hash, err)
	}
	if !access.VerifySecret(hash, secret) || access.VerifySecret(hash, secret+"x") {
		t.Fatal("verification does not tell the secret apart")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=9999999,t=2,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=19456,t=99,p=1$c2FsdA$a2V5"} {
		if access.VerifySecret(bad, secret) {
			t.Fatalf("hash %q matched", bad)
		}
	}
}

// TestSecretCost: a hash records the cost it was made at and verifies at
// it, so secrets hashed at credgate's cost and at a lower one verify side
// by side; costs VerifySecret would refuse are refused when hashing.
func TestSecretCost(t *testing.T) {
	t.Parallel()
	secret, err := access.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if c := access.DefaultSecretCost(); c.Time != 2 || c.MemoryKiB != 19456 {
		t.Fatalf("default cost %+v", c)
	}
	low, err := access.HashSecret(secret, access.SecretCost{Time: 1, MemoryKiB: 64})
	if err != nil || !strings.HasPrefix(low, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q, %v", low, err)
	}
	def, err := access.HashSecret(secret, access.DefaultSecretCost())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{low, def} {
		if !access.VerifySecret(h, secret) || access.VerifySecret(h, secret+"x") {
			t.Fatalf("%.30s… does not tell the secret apart", h)
		}
	}
	for _, bad := range []access.SecretCost{{}, {Time: 0, MemoryKiB: 64}, {Time: 1, MemoryKiB: 7},
		{Time: 11, MemoryKiB: 64}, {Time: 1, MemoryKiB: 256*1024 + 1}} {
		if h, err := access.HashSecret(secret, bad); !errors.Is(err, access.ErrSecretCost) {
			t.Errorf("cost %+v: %q, %v", bad, h, err)
		}
	}
}

type sharedSet struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error
}

func (s *sharedSet) FirstUse(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, s.err
	}
	if ttl <= 0 {
		panic("no ttl")
	}
	first := !s.seen[key]
	s.seen[key] = true
	return first, nil
}

func TestReplaySet(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	shared := &sharedSet{seen: map[string]bool{}}
	a := access.NewReplaySet(access.WithSharedReplay(shared))
	b := access.NewReplaySet(access.WithSharedReplay(shared))
	until := time.Now().Add(time.Minute)
	if !a.FirstUse(ctx, "cg_x:jti-1", until) {
		t.Fatal("first use refused")
	}
	if a.FirstUse(ctx, "cg_x:jti-1", until) {
		t.Fatal("replay on the same replica accepted")
	}
	if b.FirstUse(ctx, "cg_x:jti-1", until) {
		t.Fatal("replay on another replica accepted")
	}
	// With the shared set down, each replica still refuses what it saw.
	shared.err = errors.New("down")
	if !a.FirstUse(ctx, "cg_x:jti-2", until) || a.FirstUse(ctx, "cg_x:jti-2", until) {
		t.Fatal("local replay set does not work alone")
	}
	// Keys are forgotten once their assertion has expired.
	local := access.NewReplaySet()
	if !local.FirstUse(ctx, "k", time.Now()) {
		t.Fatal("first use refused")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !local.FirstUse(ctx, "k", time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("an expired key is still remembered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
