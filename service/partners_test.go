package service_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// spy records what the audit appends, on its way to the real appender.
type spy struct {
	next service.Auditor
	mu   sync.Mutex
	recs []evidence.Record
	fail error // when set, Append fails with it
}

func (s *spy) Append(ctx context.Context, recs ...evidence.Record) ([]evidence.Record, error) {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	out, err := s.next.Append(ctx, recs...)
	if err == nil {
		s.mu.Lock()
		s.recs = append(s.recs, out...)
		s.mu.Unlock()
	}
	return out, err
}

func (s *spy) bodies(t *testing.T) []service.AuditBody {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]service.AuditBody, len(s.recs))
	for i, r := range s.recs {
		if r.Kind != evidence.KindAdmin {
			t.Fatalf("record %d kind %q, want admin", i, r.Kind)
		}
		if err := json.Unmarshal(r.Body, &out[i]); err != nil {
			t.Fatalf("record %d body: %v", i, err)
		}
		if r.Partner != out[i].Actor {
			t.Fatalf("record %d partner %q, body actor %q", i, r.Partner, out[i].Actor)
		}
	}
	return out
}

type fixture struct {
	store    service.Store
	cat      *policy.Catalog
	clock    *testenv.Clock
	spy      *spy
	partners *service.Partners
	entries  *service.Entries
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	f := &fixture{store: st, cat: cat, clock: testenv.NewClock(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)), spy: &spy{next: app}}
	audit := service.NewAudit(f.spy, service.WithAuditClock(f.clock.Now))
	f.partners = service.NewPartners(st, cat, service.WithPartnersAudit(audit), service.WithPartnersClock(f.clock.Now),
		service.WithSecretCost(testenv.SecretCost()))
	f.entries = service.NewEntries(st, cat, service.WithEntriesAudit(audit), service.WithEntriesClock(f.clock.Now))
	return f
}

func asAdmin(ctx context.Context) context.Context {
	return service.WithActor(ctx, service.Actor{ClientID: "admin-7", Role: service.RoleAdmin})
}

func TestRotateWithOverlap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	p, oldSecret, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "某银行", Actions: []string{"bank_credit"}})
	if err != nil {
		t.Fatal(err)
	}
	_, oldCred, err := f.partners.Authenticate(ctx, p.ClientID, oldSecret)
	if err != nil {
		t.Fatalf("new partner cannot authenticate: %v", err)
	}

	// Rotate with a one-hour overlap: both secrets work until it ends.
	p, newSecret, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == "" || newSecret == oldSecret {
		t.Fatalf("rotation gave secret %q", newSecret)
	}
	_, newCred, err := f.partners.Authenticate(ctx, p.ClientID, newSecret)
	if err != nil || newCred == oldCred {
		t.Fatalf("new secret: cred %q, %v", newCred, err)
	}
	if _, c, err := f.partners.Authenticate(ctx, p.ClientID, oldSecret); err != nil || c != oldCred {
		t.Fatalf("old secret during the overlap: cred %q, %v", c, err)
	}
	if !service.CredentialValid(p, oldCred, f.clock.Now()) {
		t.Fatal("tokens of the old secret refused during the overlap")
	}
	f.clock.Add(time.Hour)
	if _, _, err := f.partners.Authenticate(ctx, p.ClientID, oldSecret); !errors.Is(err, service.ErrInvalidClient) {
		t.Fatalf("old secret after the overlap: %v", err)
	}
	if service.CredentialValid(p, oldCred, f.clock.Now()) {
		t.Fatal("tokens of the old secret still valid after the overlap")
	}
	if _, _, err := f.partners.Authenticate(ctx, p.ClientID, newSecret); err != nil {
		t.Fatalf("new secret after the overlap: %v", err)
	}

	// Rotating twice ends the earlier overlap: at most two generations.
	p, second, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, third, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Credentials) != 2 {
		t.Fatalf("%d credentials after two rotations, want 2", len(p.Credentials))
	}
	for secret, ok := range map[string]bool{newSecret: false, second: true, third: true} {
		if _, _, err := f.partners.Authenticate(ctx, p.ClientID, secret); (err == nil) != ok {
			t.Errorf("secret works = %v, want %v", err == nil, ok)
		}
	}

	// Overlap 0 (a leaked secret): the old one stops at once.
	p, fourth, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Credentials) != 1 {
		t.Fatalf("%d credentials after an immediate rotation", len(p.Credentials))
	}
	for secret, ok := range map[string]bool{second: false, third: false, fourth: true} {
		if _, _, err := f.partners.Authenticate(ctx, p.ClientID, secret); (err == nil) != ok {
			t.Errorf("secret works = %v, want %v", err == nil, ok)
		}
	}

	// Every act is in the log, by the acting admin, without secrets.
	bodies := f.spy.bodies(t)
	want := []service.Act{service.ActPartnerCreated, service.ActCredentialRotated, service.ActCredentialRotated,
		service.ActCredentialRotated, service.ActCredentialRotated}
	if len(bodies) != len(want) {
		t.Fatalf("%d audit records, want %d", len(bodies), len(want))
	}
	for i, b := range bodies {
		if b.Act != want[i] || b.Actor != "admin-7" || b.Target != p.ClientID || b.Details["actor_role"] != "admin" {
			t.Errorf("record %d: %+v", i, b)
		}
	}
	f.spy.mu.Lock()
	for _, r := range f.spy.recs {
		for _, s := range []string{oldSecret, newSecret, second, third, fourth, "argon2id"} {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("audit record holds a secret or hash: %s", r.Body)
			}
		}
	}
	f.spy.mu.Unlock()
	if bodies[4].Details["overlap_seconds"] != float64(0) {
		t.Errorf("overlap not recorded: %v", bodies[4].Details)
	}
}

func TestRevokedPartnerStopsWithinTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	p, secret, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "某交易中心", Actions: []string{"public_tendering"}})
	if err != nil {
		t.Fatal(err)
	}
	// A second replica: its own cache over the same store.
	other := service.NewPartners(f.store, f.cat, service.WithPartnersClock(f.clock.Now), service.WithSecretCost(testenv.SecretCost()))
	if _, err := other.Active(ctx, p.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.partners.Revoke(ctx, p.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.partners.Active(ctx, p.ClientID); !errors.Is(err, service.ErrInvalidClient) {
		t.Fatalf("revoking replica still trusts the partner: %v", err)
	}
	f.clock.Add(5*time.Second + time.Millisecond)
	if _, err := other.Active(ctx, p.ClientID); !errors.Is(err, service.ErrInvalidClient) {
		t.Fatalf("other replica trusts a revoked partner after 5s: %v", err)
	}
	if _, _, err := f.partners.Authenticate(ctx, p.ClientID, secret); !errors.Is(err, service.ErrInvalidClient) {
		t.Fatalf("revoked partner authenticates: %v", err)
	}
	if _, _, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{}); !errors.Is(err, service.ErrPartnerRevoked) {
		t.Fatalf("rotating a revoked partner: %v", err)
	}
	// Revoking again changes nothing and records nothing.
	before := len(f.spy.bodies(t))
	if _, err := f.partners.Revoke(ctx, p.ClientID); err != nil {
		t.Fatal(err)
	}
	if got := len(f.spy.bodies(t)); got != before {
		t.Fatalf("idempotent revoke recorded an act")
	}
}

func TestAuditIsWrittenAhead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())

	// The log refuses: the act is not performed.
	f.spy.mu.Lock()
	f.spy.fail = errors.New("disk on fire")
	f.spy.mu.Unlock()
	_, _, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "无记录", Actions: []string{"bank_credit"}, ClientID: "no-record"})
	if !errors.Is(err, service.ErrAuditUnavailable) {
		t.Fatalf("create without audit: %v", err)
	}
	if _, err := f.store.PartnerByClientID(ctx, "no-record"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a partner was stored without its audit record: %v", err)
	}
	_, err = f.entries.Create(ctx, service.EntryInput{
		Subject: "91350100M000100Y43", List: "safety_production_blacklist", OriginatingDepartment: "应急管理部",
		Reason: "发生重大生产安全责任事故", LegalBasis: "《安全生产法》",
		DecidedAt: f.clock.Now().Add(-48 * time.Hour), PublishedAt: f.clock.Now().Add(-24 * time.Hour),
	})
	if !errors.Is(err, service.ErrAuditUnavailable) {
		t.Fatalf("entry without audit: %v", err)
	}
	if es, _ := f.store.ListEntries(ctx, service.EntryFilter{}); len(es) != 0 {
		t.Fatalf("an entry was stored without its audit record")
	}
	f.spy.mu.Lock()
	f.spy.fail = nil
	f.spy.mu.Unlock()

	// The act fails after its record: a second record says so.
	if _, _, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "甲", Actions: []string{"bank_credit"}, ClientID: "dup"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.partners.Create(ctx, service.NewPartnerInput{Name: "乙", Actions: []string{"bank_credit"}, ClientID: "dup"})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("duplicate client id: %v", err)
	}
	b := f.spy.bodies(t)
	if len(b) != 3 || b[1].Act != service.ActPartnerCreated || b[2].Act != service.ActFailed ||
		b[2].Details["act"] != string(service.ActPartnerCreated) || b[2].Details["failure"] != "conflict" {
		t.Fatalf("records %+v", b)
	}
	f.spy.mu.Lock()
	attempt := f.spy.recs[1].ID
	f.spy.mu.Unlock()
	if b[2].Details["act_id"] != attempt {
		t.Fatalf("act_failed names %v, not the failed attempt %s", b[2].Details["act_id"], attempt)
	}
}

func TestEntryActsAreAudited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	person := "11010519491231002X"
	e, err := f.entries.Create(ctx, service.EntryInput{
		Subject: "91350100M000100Y43", List: "safety_production_blacklist", OriginatingDepartment: "应急管理部",
		Reason: "发生重大生产安全责任事故", LegalBasis: "《安全生产法》",
		DecidedAt: f.clock.Now().Add(-48 * time.Hour), PublishedAt: f.clock.Now().Add(-24 * time.Hour),
		ResponsiblePersons: []policy.ResponsiblePerson{{ID: person, Role: policy.RoleLegalRepresentative}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reason := "补充证据"
	if _, err := f.entries.Patch(ctx, e.ID, service.EntryPatch{Reason: &reason}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.entries.Revoke(ctx, e.ID, "复议撤销"); err != nil {
		t.Fatal(err)
	}
	in := service.EntryInput{Subject: "914403001922038216", List: "safety_production_blacklist", OriginatingDepartment: "应急管理部",
		Reason: "事故", LegalBasis: "《安全生产法》", DecidedAt: f.clock.Now().Add(-48 * time.Hour), PublishedAt: f.clock.Now().Add(-24 * time.Hour)}
	again := in // another decision about the same subject: one file lists an entry once
	again.DecidedAt = in.DecidedAt.Add(-time.Hour)
	imported, err := f.entries.Import(ctx, []service.EntryInput{in, again}, []int{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	// Acts reached without a caller (feeds, bootstrap) are credgate's
	// (another decision: the same one is stored already).
	third := in
	third.DecidedAt = in.DecidedAt.Add(-2 * time.Hour)
	if _, err := f.entries.Create(t.Context(), third); err != nil {
		t.Fatal(err)
	}
	b := f.spy.bodies(t)
	want := []struct {
		act    service.Act
		actor  string
		target string
	}{
		{service.ActEntryCreated, "admin-7", e.ID}, {service.ActEntryPatched, "admin-7", e.ID},
		{service.ActEntryRevoked, "admin-7", e.ID}, {service.ActEntriesImported, "admin-7", "entries"},
		{service.ActEntryCreated, service.SystemActorID, ""},
	}
	if len(b) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(b), len(want), b)
	}
	for i, w := range want {
		if b[i].Act != w.act || b[i].Actor != w.actor || (w.target != "" && b[i].Target != w.target) {
			t.Errorf("record %d = %s by %s on %s, want %s by %s on %s", i, b[i].Act, b[i].Actor, b[i].Target, w.act, w.actor, w.target)
		}
		if !b[i].At.Equal(f.clock.Now()) {
			t.Errorf("record %d at %v", i, b[i].At)
		}
	}
	if got := fmt.Sprint(b[1].Details["changed"]); got != "[reason]" {
		t.Errorf("patch details name %s", got)
	}
	if ids := b[3].Details["entry_ids"].([]any); len(ids) != 2 || ids[0] != imported[0].ID {
		t.Errorf("import details %v", b[3].Details)
	}
	f.spy.mu.Lock()
	defer f.spy.mu.Unlock()
	for _, r := range f.spy.recs {
		if strings.Contains(string(r.Body), person) {
			t.Errorf("an audit record names a responsible person: %s", r.Body)
		}
	}
}

func TestCreateRefusesBadScopeAndKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	okp := func(extra string) []byte {
		return fmt.Appendf(nil, `{"kty":"OKP","crv":"Ed25519","x":%q%s}`, base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), extra)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, in := range map[string]service.NewPartnerInput{
		"no actions":           {Name: "x"},
		"unknown action":       {Name: "x", Actions: []string{"teleport"}},
		"repeated action":      {Name: "x", Actions: []string{"bank_credit", "bank_credit"}},
		"unknown kind":         {Name: "x", Actions: []string{"bank_credit"}, SubjectKinds: []policy.SubjectKind{"robot"}},
		"bad visibility":       {Name: "x", Actions: []string{"bank_credit"}, Visibility: "everything"},
		"bad rate":             {Name: "x", Actions: []string{"bank_credit"}, RateLimit: "lots"},
		"zero rate":            {Name: "x", Actions: []string{"bank_credit"}, RateLimit: "0-M"},
		"auditor with actions": {Name: "x", Role: service.RoleAuditor, Actions: []string{"bank_credit"}},
		"admin with scope":     {Name: "x", Role: service.RoleAdmin, Visibility: service.VisibilityFull},
		"private key":          {Name: "x", Actions: []string{"bank_credit"}, JWKS: [][]byte{okp(`,"d":"c2VjcmV0"`)}},
		"weak RSA":             {Name: "x", Actions: []string{"bank_credit"}, JWKS: [][]byte{rsaJWK(&weak.PublicKey, "")}},
		"symmetric key":        {Name: "x", Actions: []string{"bank_credit"}, JWKS: [][]byte{[]byte(`{"kty":"oct","k":"c2VjcmV0"}`)}},
		"alg mismatch":         {Name: "x", Actions: []string{"bank_credit"}, JWKS: [][]byte{okp(`,"alg":"HS256"`)}},
		"secret and keys":      {Name: "x", Actions: []string{"bank_credit"}, JWKS: [][]byte{okp("")}, Secret: "0123456789abcdef0123"},
		"same kid twice":       {Name: "x", Actions: []string{"bank_credit"}, JWKS: [][]byte{okp(`,"kid":"a"`), okp(`,"kid":"a"`)}},
	} {
		if _, _, err := f.partners.Create(ctx, in); !errors.Is(err, service.ErrInvalidPartner) {
			t.Errorf("%s: err %v, want ErrInvalidPartner", name, err)
		}
	}
	if all, _ := f.store.ListPartners(ctx); len(all) != 0 {
		t.Fatalf("refused partners were stored: %d", len(all))
	}
	if n := len(f.spy.bodies(t)); n != 0 {
		t.Fatalf("refused registrations were recorded as acts: %d", n)
	}
	// A key partner gets no secret and cannot use one.
	p, secret, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "密钥伙伴", Actions: []string{"bank_credit"}, JWKS: [][]byte{okp("")}})
	if err != nil || secret != "" || service.AuthMethod(p) != service.AuthMethodPrivateKey {
		t.Fatalf("key partner: secret %q, method %s, %v", secret, service.AuthMethod(p), err)
	}
	if _, _, err := f.partners.Authenticate(ctx, p.ClientID, "anything-at-all-0123"); !errors.Is(err, service.ErrInvalidClient) {
		t.Fatalf("key partner authenticated with a secret: %v", err)
	}
	_, keys, err := f.partners.AssertionKeys(ctx, p.ClientID)
	if err != nil || len(keys) != 1 || keys[0].Alg != "EdDSA" {
		t.Fatalf("assertion keys %+v, %v", keys, err)
	}
}

func rsaJWK(pub *rsa.PublicKey, alg string) []byte {
	e := big.NewInt(int64(pub.E)).Bytes()
	m := map[string]string{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e)}
	if alg != "" {
		m["alg"] = alg
	}
	b, _ := json.Marshal(m)
	return b
}

// TestSecretCostOfNewSecrets: WithSecretCost sets what new secrets are
// hashed at, and a secret hashed at either cost authenticates through a
// Partners of the other, since each hash records its own.
func TestSecretCostOfNewSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // its Partners hash at testenv.SecretCost
	ctx := asAdmin(t.Context())
	full := service.NewPartners(f.store, f.cat, service.WithPartnersClock(f.clock.Now))
	cheap, cheapSecret, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "甲", Actions: []string{"bank_credit"}})
	if err != nil {
		t.Fatal(err)
	}
	dear, dearSecret, err := full.Create(ctx, service.NewPartnerInput{Name: "乙", Actions: []string{"bank_credit"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p      service.Partner
		prefix string
	}{{cheap, "$argon2id$v=19$m=64,t=1,p=1$"}, {dear, "$argon2id$v=19$m=19456,t=2,p=1$"}} {
		creds := service.CredentialsOf(c.p)
		if len(creds) != 1 || !strings.HasPrefix(creds[0].SecretHash, c.prefix) {
			t.Fatalf("%s: credentials %+v, want a hash %s…", c.p.Name, creds, c.prefix)
		}
	}
	for _, ps := range []*service.Partners{f.partners, full} {
		for clientID, secret := range map[string]string{cheap.ClientID: cheapSecret, dear.ClientID: dearSecret} {
			if _, _, err := ps.Authenticate(ctx, clientID, secret); err != nil {
				t.Fatalf("%s: %v", clientID, err)
			}
			if _, _, err := ps.Authenticate(ctx, clientID, secret+"x"); !errors.Is(err, service.ErrInvalidClient) {
				t.Fatalf("%s with a wrong secret: %v", clientID, err)
			}
		}
	}
	bad := service.NewPartners(f.store, f.cat, service.WithSecretCost(access.SecretCost{}))
	if _, _, err := bad.Create(ctx, service.NewPartnerInput{Name: "丙", Actions: []string{"bank_credit"}}); !errors.Is(err, access.ErrSecretCost) {
		t.Fatalf("a partner registered at cost zero: %v", err)
	}
}
