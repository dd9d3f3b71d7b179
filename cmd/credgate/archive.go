package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

const archiveUsage = `Usage: credgate archive [flags] OUT

Writes the evidence log, up to its latest signed checkpoint (or, with --size N,
the largest one of at most N records), out of the configured store into OUT:
a directory, or a single tar file when OUT ends in .tar. OUT must not exist.
The archive is self-contained, for an auditor years later with no server and
no database: C2SP tlog-tiles (checkpoint, tile/<L>/<N>, tile/entries/<N>, as
/v1/evidence/tlog/ serves them), every stored checkpoint of the range
(checkpoints/<SIZE>), every verifier key that signed, rotated ones included
(keys), the records with their bodies and salts (records/<N>: an erased
record as the log holds it, its body and salt empty) and a manifest
(credgate-archive.json). See docs/EVIDENCE.md, "Archives".

The log is read bundle by bundle (256 records at a time), so a log of
millions of records is never held in memory; a server may go on serving
meanwhile. What is written is verified as it is written, exactly as
credgate verify --archive will: a log that does not verify is not archived.
The archive is written under a temporary name beside OUT and renamed only
once whole and synced: an export that fails or is interrupted leaves no OUT.

Verify it offline with: credgate verify --archive OUT --key KEY [RECEIPT.json…]
`

// archiveSettings: where the data is.
var archiveSettings = []string{"store"}

// archiveStore is what the export reads: the log's records, tree,
// checkpoints and keys.
type archiveStore interface {
	evidence.ArchiveSource
	LatestCheckpoint(ctx context.Context) (evidence.StoredCheckpoint, error)
	Checkpoints(ctx context.Context, below uint64, limit int) ([]evidence.StoredCheckpoint, error)
}

// archiveCmd is "credgate archive".
func archiveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, loader := commandFlags("archive", archiveUsage, archiveSettings, stderr)
	size := fs.String("size", "", "archive up to the largest signed checkpoint of at most this many records (default: the latest)")
	noBodies := fs.Bool("no-bodies", false, "leave the records' bodies and salts out (records/): only the leaf data, tree and checkpoints")
	var keys keyFlags
	fs.Var(&keys, "key", "a verifier key to archive beside the stored ones (a previous origin's, after a restore as a new log), or a file of keys; repeatable")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	var upTo uint64
	if *size != "" {
		n, err := strconv.ParseUint(*size, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "credgate archive: --size %q is not a number of records\n", *size)
			return errUsage
		}
		upTo = n
	}
	var extra []string
	for _, k := range keys {
		ks, err := archiveKeyArg(k)
		if err != nil {
			return err
		}
		extra = append(extra, ks...)
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	if cfg.Store.PostgresURL == "" {
		// Opening a data dir creates a database; there is nothing to
		// archive in one that was not there.
		if _, err := os.Stat(filepath.Join(cfg.Store.DataDir, sqlite.FileName)); err != nil {
			return fmt.Errorf("no evidence log to archive in %s (store.data_dir): %w", cfg.Store.DataDir, err)
		}
	}
	raw, _, closeStore, err := openStore(ctx, cfg.Store, false)
	if err != nil {
		return err
	}
	defer closeStore()
	st, ok := raw.(archiveStore)
	if !ok {
		return errors.New("this store cannot be archived")
	}
	end, err := archiveEnd(ctx, st, *size != "", upTo)
	if err != nil {
		return err
	}
	out := fs.Arg(0)
	w, err := audit.CreateArchive(out)
	if err != nil {
		return err
	}
	defer w.Abort()
	m, err := evidence.WriteArchive(ctx, st, end, w, evidence.ArchiveOptions{Bodies: !*noBodies, ExtraKeys: extra})
	if err != nil {
		return fmt.Errorf("nothing written to %s: %w", out, err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("nothing written to %s: %w", out, err)
	}
	bodies := "with bodies"
	if !m.Bodies {
		bodies = "without bodies"
	}
	fmt.Fprintf(stdout, "credgate archive: %s: %q, %d records (root %s), %d signed checkpoints, %d verifier keys, %s, %d erased\n",
		out, m.Origin, m.Size, m.RootHash, m.Checkpoints, m.Keys, bodies, m.Erased)
	fmt.Fprintf(stdout, "verify it with: credgate verify --archive %s --key KEYFILE\n", out)
	return nil
}

// archiveKeyArg is a --key of archive: a verifier key, or a file of them.
func archiveKeyArg(a string) ([]string, error) {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "PRIVATE+KEY+") {
		return nil, errors.New("--key is a private signer key; give the verifier key")
	}
	if _, err := evidence.Verifiers(a); err == nil {
		return []string{a}, nil
	}
	b, err := readLimited(a, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("--key %s: not a verifier key, nor a readable file: %w", a, err)
	}
	ks, err := audit.ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("--key %s: %w", a, err)
	}
	if _, err := evidence.Verifiers(ks...); err != nil {
		return nil, fmt.Errorf("--key %s: %w", a, err)
	}
	return ks, nil
}

// archiveEnd is the checkpoint the archive ends at.
func archiveEnd(ctx context.Context, st archiveStore, sized bool, upTo uint64) (evidence.StoredCheckpoint, error) {
	if !sized {
		cp, err := st.LatestCheckpoint(ctx)
		if errors.Is(err, evidence.ErrNoCheckpoint) {
			return cp, errors.New("the log has no signed checkpoint yet: start credgate serve on it once, then archive")
		}
		return cp, err
	}
	below := upTo + 1
	if upTo == ^uint64(0) {
		below = 0
	}
	cps, err := st.Checkpoints(ctx, below, 1)
	if err != nil {
		return evidence.StoredCheckpoint{}, err
	}
	if len(cps) == 0 {
		return evidence.StoredCheckpoint{}, fmt.Errorf("--size %d: no signed checkpoint of at most %d records", upTo, upTo)
	}
	return cps[0], nil
}

// archiveSummary is verify --archive's line about the archive.
func archiveSummary(path string, rep evidence.ArchiveReport) string {
	cp := rep.Checkpoint
	return fmt.Sprintf("%s: OK: archive of %q, %d records (root %s): every entry rebuilds the signed tree, every tile matches it, %d signed checkpoints verified (origins %s)",
		path, cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]), rep.Checkpoints, strings.Join(quoteAll(rep.Origins), ", "))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
