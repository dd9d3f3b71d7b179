package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/internal/config"
)

const migrateUsage = `Usage: credgate migrate [flags]

Brings the configured store's schema up to this binary's version, prints that
version and exits. serve does the same at every start; running migrate once
before a rolling upgrade (a Kubernetes init container, the compose file's
migrate service) means no replica of the new version starts on a schema it
has to change, and a migration that fails stops the upgrade before any new
replica serves. Replicas starting together are safe either way: on
PostgreSQL, migrations are serialised by an advisory lock and a schema
already current is left as it is. There each migration waits at most 10s for
a table's lock, so that it does not hold up the old replicas' checks behind
a long transaction, and is rolled back and tried again (five times in all)
when it cannot have it.

On SQLite, migrate needs the data dir to itself: it takes the lock a server
holds, and is refused while one runs there (stop it, migrate, start the new
credgate; serve migrates at its start anyway).

A database migrated by a newer credgate is refused, by migrate and by every
command that opens the store: run the credgate that migrated it, or restore
the backup taken before the upgrade. --status prints the database's schema
version and this credgate's, and changes nothing.
`

// migrateSettings: only where the data is.
var migrateSettings = []string{"store"}

// migrateCmd is "credgate migrate".
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, loader := commandFlags("migrate", migrateUsage, migrateSettings, stderr)
	status := fs.Bool("status", false, "print the database's schema version and this credgate's, and change nothing")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	if *status {
		return migrateStatus(ctx, cfg.Store, stdout)
	}
	if cfg.Store.PostgresURL == "" {
		// A server on this data dir would go on writing as its schema
		// asked, which the migration changes under it.
		if err := os.MkdirAll(cfg.Store.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir (store.data_dir): %w", err)
		}
		lock, err := sqlite.LockDataDir(cfg.Store.DataDir)
		if errors.Is(err, sqlite.ErrDataDirLocked) {
			return fmt.Errorf("%w: a credgate is serving this data dir, and its writes would fail on a schema migrated under it; "+
				"stop it first, then migrate (or start the new credgate: serve migrates at its start)", err)
		}
		if err != nil {
			return fmt.Errorf("data dir (store.data_dir): %w", err)
		}
		defer lock.Release()
	}
	_, kind, closeStore, err := openStore(ctx, cfg.Store, false)
	if err != nil {
		return err
	}
	closeStore()
	v, err := schemaVersions(ctx, cfg.Store)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "credgate migrate: the %s schema is current (version %d)\n", kind, v.Applied)
	return nil
}

// migrateStatus is "credgate migrate --status": the versions, read only.
// A schema newer than this binary's is its error.
func migrateStatus(ctx context.Context, c config.Store, stdout io.Writer) error {
	v, err := schemaVersions(ctx, c)
	if err != nil {
		return err
	}
	kind := "sqlite"
	if c.PostgresURL != "" {
		kind = "postgres"
	}
	switch {
	case v.Applied == 0:
		fmt.Fprintf(stdout, "credgate migrate: no %s schema yet; this credgate's is version %d\n", kind, v.Known)
	case v.Pending():
		fmt.Fprintf(stdout, "credgate migrate: the %s schema is version %d, this credgate's %d: credgate migrate (or serve) brings it up\n",
			kind, v.Applied, v.Known)
	case v.Applied == v.Known:
		fmt.Fprintf(stdout, "credgate migrate: the %s schema is current (version %d)\n", kind, v.Applied)
	}
	return v.Check()
}

// schemaVersions reads the store's schema version without migrating.
func schemaVersions(ctx context.Context, c config.Store) (sqlite.Versions, error) {
	if c.PostgresURL != "" {
		v, err := postgres.SchemaVersions(ctx, c.PostgresURL)
		if err != nil {
			return v, fmt.Errorf("PostgreSQL (store.postgres_url): %w", err)
		}
		return v, nil
	}
	v, err := sqlite.SchemaVersions(ctx, c.DataDir)
	if err != nil {
		return v, fmt.Errorf("SQLite in %s (store.data_dir): %w", c.DataDir, err)
	}
	return v, nil
}
