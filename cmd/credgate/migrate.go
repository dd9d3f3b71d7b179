package main

import (
	"context"
	"fmt"
	"io"
)

const migrateUsage = `Usage: credgate migrate [flags]

Brings the configured store's schema up to this binary's version and exits.
serve does the same at every start; running migrate once before a rolling
upgrade (a Kubernetes init container, the compose file's migrate service)
means no replica of the new version starts on a schema it has to change, and
a migration that fails stops the upgrade before any new replica serves.
Replicas starting together are safe either way: on PostgreSQL, migrations
are serialised by an advisory lock and a schema already current is left as
it is.
`

// migrateSettings: only where the data is.
var migrateSettings = []string{"store"}

// migrateCmd is "credgate migrate".
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig("migrate", migrateUsage, migrateSettings, args, stderr)
	if err != nil {
		return err
	}
	// Opening a store migrates it. The SQLite data dir is not locked: a
	// migration beside a running server is serialised by SQLite itself.
	_, kind, closeStore, err := openStore(ctx, cfg.Store, false)
	if err != nil {
		return err
	}
	closeStore()
	fmt.Fprintf(stdout, "credgate migrate: the %s schema is current\n", kind)
	return nil
}
