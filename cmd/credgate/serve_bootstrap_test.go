package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// A bootstrap administrator configured under the id of a revoked one is
// not brought back, and serve says so at WARN with the way back in (an id
// never used before) rather than starting as if it had worked.
func TestBootstrapAdminWarnsOfARevokedID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cat, st, app := sqlitetest.OpenWithEvidence(t)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(service.NewAudit(app)), service.WithSecretCost(testenv.SecretCost()))
	now := time.Now().UTC().Truncate(time.Microsecond)
	gone := service.Partner{ID: "p-admin-gone", ClientID: "admin-gone", Name: "bootstrap administrator", Role: service.RoleAdmin,
		Status: service.PartnerRevoked, CreatedAt: now, UpdatedAt: now, RevokedAt: &now, Version: 2}
	if err := st.InsertPartner(ctx, gone); err != nil {
		t.Fatal(err)
	}
	start := func(id string) string {
		t.Helper()
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, nil))
		c := config.Access{AdminClientID: id, AdminClientSecret: "bootstrap-secret-for-tests-0123456789"}
		if got, err := bootstrapAdmin(ctx, partners, c, t.TempDir(), logger); err != nil || got != id {
			t.Fatalf("bootstrapAdmin(%s) = %q, %v", id, got, err)
		}
		return logs.String()
	}
	logs := start("admin-gone")
	for _, want := range []string{`"level":"WARN"`, "revoked and is not brought back", "never used before", `"client_id":"admin-gone"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("start under a revoked administrator's id: log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "bootstrap-secret") {
		t.Errorf("the log names the secret:\n%s", logs)
	}
	// A new id is created, and an active one kept, without a warning.
	for _, id := range []string{"admin-breakglass", "admin-breakglass"} {
		if logs := start(id); strings.Contains(logs, "WARN") {
			t.Errorf("start under %s warned:\n%s", id, logs)
		}
	}
	if p, err := partners.Get(ctx, "admin-breakglass"); err != nil || p.Status != service.PartnerActive {
		t.Fatalf("break-glass administrator: %+v, %v", p, err)
	}
}
