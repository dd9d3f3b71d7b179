package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

const keygenUsage = `Usage: credgate keygen --data-dir DIR [--evidence-origin ORIGIN]

Writes the keys every replica of a deployment shares into DIR, as a first
start of serve would: token-signing.key (access tokens) and
evidence-signing.key (evidence checkpoints), each 0600. Keys already there
are kept, never replaced. Prints the evidence log's verifier key, which
auditors pin. Hand DIR's files to every replica as secrets: mounted into
its data dir, or as CREDGATE_EVIDENCE_KEY (the file's path) and
CREDGATE_TOKEN_KEY (the file's content). Not as --token-key or a key in
--evidence-key: every local user can read a process's flags. See
docs/OPERATIONS.md.
`

// keygenCmd is "credgate keygen".
func keygenCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig("keygen", keygenUsage, []string{"store.data_dir", "evidence.origin"}, args, stderr)
	if err != nil {
		return err
	}
	dir := cfg.Store.DataDir
	if _, err := dataDirTokenKey(dir, true); err != nil {
		return err
	}
	signer, err := dataDirSigner(cfg.Evidence.Origin, dir, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	for _, f := range []string{tokenKeyFile, evidenceKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", filepath.Join(dir, f))
	}
	fmt.Fprintf(stdout, "evidence verifier key (auditors pin it): %s\n", signer.VerifierKey())
	return nil
}
