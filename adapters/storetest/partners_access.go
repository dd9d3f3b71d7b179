package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// testPartnerAccessFields checks that credentials (with overlap expiry and
// a JWK kept byte for byte), subject kinds, visibility and the quota
// override round-trip through insert and update, and that a partner stored
// without them reads back with none.
func testPartnerAccessFields(t *testing.T, s service.Store) {
	ctx := t.Context()
	jwk := `{"kty":"OKP","kid":"k1","alg":"EdDSA","use":"sig","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	p := partner("p1", "client-1")
	p.SecretHash = ""
	p.Credentials = []service.Credential{
		{ID: "k1", Kind: service.CredentialPublicKey, JWK: jwk, CreatedAt: at(0)},
		{ID: "sec_0a1b2c", Kind: service.CredentialSecret, SecretHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: at(-time.Hour), ExpiresAt: ptr(at(24 * time.Hour))},
	}
	p.SubjectKinds = []policy.SubjectKind{policy.KindOrganization}
	p.Visibility = service.VisibilityFull
	p.RateLimit = "6000-M"
	if err := s.InsertPartner(ctx, p); err != nil {
		t.Fatal(err)
	}
	plain := partner("p2", "client-2")
	if err := s.InsertPartner(ctx, plain); err != nil {
		t.Fatal(err)
	}
	check := func(clientID string, want service.Partner) {
		t.Helper()
		got, err := s.PartnerByClientID(ctx, clientID)
		if err != nil {
			t.Fatal(err)
		}
		checkPartner(t, withoutAccess(got), withoutAccess(want))
		wantCreds := make([]service.Credential, len(want.Credentials))
		for i, c := range want.Credentials {
			c.CreatedAt = stored(c.CreatedAt)
			c.ExpiresAt = storedPtr(c.ExpiresAt)
			wantCreds[i] = c
		}
		if len(wantCreds) == 0 {
			wantCreds = nil
		}
		for _, c := range got.Credentials {
			checkTimes(t, "credential "+c.ID, &c.CreatedAt, c.ExpiresAt)
		}
		if !reflect.DeepEqual(got.Credentials, wantCreds) {
			t.Errorf("credentials of %s:\n got %+v\nwant %+v", clientID, got.Credentials, wantCreds)
		}
		wantKinds := want.SubjectKinds
		if len(wantKinds) == 0 {
			wantKinds = nil
		}
		if !reflect.DeepEqual(got.SubjectKinds, wantKinds) || got.Visibility != want.Visibility || got.RateLimit != want.RateLimit {
			t.Errorf("scope of %s: got %v %q %q, want %v %q %q", clientID, got.SubjectKinds, got.Visibility, got.RateLimit,
				wantKinds, want.Visibility, want.RateLimit)
		}
	}
	check("client-1", p)
	check("client-2", plain)

	p.Version = 2
	p.Credentials = p.Credentials[:1]
	p.SubjectKinds = nil
	p.Visibility = service.VisibilityStandard
	p.RateLimit = ""
	p.UpdatedAt = at(time.Hour)
	if err := s.UpdatePartner(ctx, p); err != nil {
		t.Fatal(err)
	}
	check("client-1", p)
}

// testPartnerRegion checks that a partner's region (its jurisdiction,
// which scopes regional measures) round-trips through insert, listing and
// update, and that a partner stored without one reads back national ("").
func testPartnerRegion(t *testing.T, s service.Store) {
	ctx := t.Context()
	p := partner("p1", "client-1")
	p.Region = "450100"
	if err := s.InsertPartner(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertPartner(ctx, partner("p2", "client-2")); err != nil {
		t.Fatal(err)
	}
	region := func(clientID string) string {
		t.Helper()
		got, err := s.PartnerByClientID(ctx, clientID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Region
	}
	if got := region("client-1"); got != "450100" {
		t.Fatalf("region after insert: %q", got)
	}
	if got := region("client-2"); got != "" {
		t.Fatalf("region of a national partner: %q", got)
	}
	all, err := s.ListPartners(ctx)
	if err != nil || len(all) != 2 || all[0].Region != "450100" || all[1].Region != "" {
		t.Fatalf("listed: %+v, %v", all, err)
	}
	for i, want := range []string{"370100", ""} {
		p.Version, p.Region, p.UpdatedAt = int64(i+2), want, at(time.Duration(i+1)*time.Hour)
		if err := s.UpdatePartner(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got := region("client-1"); got != want {
			t.Fatalf("region after update: %q, want %q", got, want)
		}
	}
}

// withoutAccess clears the fields testPartnerAccessFields compares itself.
func withoutAccess(p service.Partner) service.Partner {
	p.Credentials, p.SubjectKinds, p.Visibility, p.RateLimit = nil, nil, "", ""
	return p
}

// testRecordsOfKind checks that administrative records are read back by
// kind, in log order, after a given index, with their bodies, and that
// the limit holds.
func testRecordsOfKind(t *testing.T, s service.Store) {
	ctx := t.Context()
	var recs []evidence.Record
	for i := range 7 {
		kind := evidence.KindCheck
		if i%3 == 1 {
			kind = evidence.KindAdmin
		}
		r := evidence.Record{ID: fmt.Sprintf("rec-%d", i), Kind: kind, Partner: "admin", At: at(time.Duration(i) * time.Second),
			Body: fmt.Appendf(nil, `{"n":%d}`, i)}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	first, err := s.AppendBatch(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.RecordsOfKind(ctx, evidence.KindAdmin, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "rec-1" || got[1].ID != "rec-4" {
		t.Fatalf("admin records %+v", got)
	}
	if got[0].Index != first+1 || string(got[0].Body) != `{"n":1}` || got[0].Hash != recs[1].Hash ||
		!bytes.Equal(got[0].Salt, recs[1].Salt) || !got[0].At.Equal(stored(recs[1].At)) || got[0].Kind != evidence.KindAdmin {
		t.Fatalf("record %+v", got[0])
	}
	got, err = s.RecordsOfKind(ctx, evidence.KindAdmin, int64(first+1), 10)
	if err != nil || len(got) != 1 || got[0].ID != "rec-4" {
		t.Fatalf("after the first: %+v, %v", got, err)
	}
	got, err = s.RecordsOfKind(ctx, evidence.KindCheck, -1, 2)
	if err != nil || len(got) != 2 || got[0].ID != "rec-0" || got[1].ID != "rec-2" {
		t.Fatalf("two checks: %+v, %v", got, err)
	}
}
