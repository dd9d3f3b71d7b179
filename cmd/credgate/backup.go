package main

import (
	"context"
	"fmt"
	"io"

	"github.com/credgate/credgate/adapters/sqlite"
)

const backupUsage = `Usage: credgate backup [flags] OUT

Writes a consistent copy of the embedded SQLite database (store.data_dir) to
OUT, which must not exist, while a server may go on serving: the copy is the
database as of one moment (SQLite's VACUUM INTO, in one read transaction),
mode 0600, synced, and checked (integrity_check) before the command prints
its schema version, the evidence records it holds and its largest signed
checkpoint. The keys are not in it: keep them in the secret store, as
docs/OPERATIONS.md (Backup and restore) says.

On PostgreSQL (store.postgres_url) use pg_dump or continuous archiving; this
command refuses.
`

// backupSettings: where the data is.
var backupSettings = []string{"store"}

// backupCmd is "credgate backup".
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, loader := commandFlags("backup", backupUsage, backupSettings, stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	if cfg.Store.PostgresURL != "" {
		return fmt.Errorf("the store is PostgreSQL (store.postgres_url): back it up with pg_dump or continuous archiving (docs/OPERATIONS.md, Backup and restore)")
	}
	out := fs.Arg(0)
	in, err := sqlite.Backup(ctx, cfg.Store.DataDir, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "credgate backup: %s (%d bytes): schema version %d, %d evidence records, largest checkpoint %d records\n",
		out, in.Bytes, in.SchemaVersion, in.TreeSize, in.CheckpointSize)
	return nil
}
