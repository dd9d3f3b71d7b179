package postgres_test

import (
	"errors"
	neturl "net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestDatabaseNotAcceptingConnectionsIsUnavailable: an operator who closes
// the database for maintenance (ALTER DATABASE … ALLOW_CONNECTIONS false,
// its sessions ended) makes every new connection fail with SQLSTATE 55000
// "database … is not currently accepting connections". That is the
// database away, as a refused connection is: requests must get 503
// store_unavailable (and checks the spool), not 500.
func TestDatabaseNotAcceptingConnectionsIsUnavailable(t *testing.T) {
	url := testenv.FreshDatabase(t, "credgate_closed")
	st, err := postgres.Open(t.Context(), url, postgres.WithMaxConns(2))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	bounded := service.NewBoundedStore(st)
	if _, err := bounded.PartnerByClientID(t.Context(), "nobody"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("before: %v", err)
	}

	_, admin := testenv.Postgres(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" ALLOW_CONNECTIONS true")
	})
	// The pool's first uses may meet the ended sessions (57P01, a cut
	// connection); once they are gone, every connection is refused with 55000.
	var last error
	for range 4 {
		_, last = bounded.PartnerByClientID(t.Context(), "nobody")
		if !errors.Is(last, service.ErrStoreUnavailable) {
			t.Fatalf("with the database closed to connections: %v, want ErrStoreUnavailable", last)
		}
	}
	t.Logf("last error: %v", last)
}
