package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3/database"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
)

// ErrBackupExists: the backup's file is there already; a backup never
// overwrites one (it may be the only copy of an older state).
var ErrBackupExists = errors.New("the backup file exists")

// BackupInfo says what a backup holds: its schema version, the evidence
// records in its tree and the largest checkpoint stored in it.
type BackupInfo struct {
	SchemaVersion  int64
	TreeSize       int64
	CheckpointSize int64
	Bytes          int64
}

// Backup writes a consistent copy of dir's database to out (VACUUM INTO:
// one read transaction, so the copy is the database as of one moment
// while a server goes on writing), owner-only, synced, then opens the
// copy to check its integrity and read what it holds. It needs no lock:
// it reads, as a server's readers do. out must not exist.
func Backup(ctx context.Context, dir, out string) (BackupInfo, error) {
	src := filepath.Join(dir, FileName)
	if _, err := os.Stat(src); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup of %s: %w", src, err)
	}
	// VACUUM INTO accepts an empty file: created here first, exclusively
	// and 0600 (it holds subjects' ID numbers), whatever the umask.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return BackupInfo{}, fmt.Errorf("sqlite: %s: %w", out, ErrBackupExists)
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	info, err := backup(ctx, src, out)
	if err != nil {
		// Never leave a partial copy that looks like a backup.
		_ = os.Remove(out)
		return BackupInfo{}, err
	}
	return info, nil
}

func backup(ctx context.Context, src, out string) (BackupInfo, error) {
	// Not a query_only connection: VACUUM INTO counts as a write
	// statement, though it changes nothing in src.
	db, err := sql.Open("sqlite", dsn(src, config{busyTimeout: 30 * time.Second}, connCheckpoint))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", out); err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup of %s into %s: %w", src, out, err)
	}
	g, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	err = errors.Join(g.Sync(), g.Close())
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: sync %s: %w", out, err)
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return inspect(ctx, out)
}

// inspect checks the copy's integrity and reads what it holds.
func inspect(ctx context.Context, path string) (BackupInfo, error) {
	db, err := sql.Open("sqlite", dsn(path, config{busyTimeout: 5 * time.Second}, connRead))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: open the backup %s: %w", path, err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check(1)").Scan(&ok); err != nil || ok != "ok" {
		return BackupInfo{}, fmt.Errorf("sqlite: the backup %s fails its integrity check: %q %v", path, ok, err)
	}
	v, err := sqlcommon.SchemaVersions(ctx, db, database.DialectSQLite3, Migrations())
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: the backup %s: %w", path, err)
	}
	in := BackupInfo{SchemaVersion: v.Applied}
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT size FROM evidence_tree_head WHERE id = 1),
		(SELECT coalesce(max(size), 0) FROM evidence_checkpoints)`).Scan(&in.TreeSize, &in.CheckpointSize)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: read the backup %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	in.Bytes = fi.Size()
	return in, nil
}
