package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
)

// publishedCheckpointFile, in the data dir, is the checkpoint this replica
// last published (signed, or served from another replica), kept outside
// the database so that a restored or rolled-back database cannot have its
// history re-signed (evidence.WithPublishedFile).
const publishedCheckpointFile = "evidence-checkpoint"

func publishedCheckpointPath(cfg *config.Config) string {
	return filepath.Join(cfg.Store.DataDir, publishedCheckpointFile)
}

// rolledBack adds to a start refused for a rolled-back database what the
// operator can do; other errors pass unchanged.
func rolledBack(err error) error {
	var rb *evidence.RollbackError
	if !errors.As(err, &rb) {
		return err
	}
	return fmt.Errorf("%w.\n"+
		"Receipts and auditors hold that checkpoint; signing this database would give a second history under the same origin and key, "+
		"which every auditor reports as a rewrite and which makes receipts contradict each other, so credgate does not start on it.\n"+
		"If the wrong database or backup was given, start on the database the log was published from, or on a backup taken after that checkpoint.\n"+
		"If the restore is deliberate, the restored log is a new log (c2sp.org/tlog-checkpoint) that begins with the restored records: "+
		"start it under a new origin (--evidence-origin / CREDGATE_EVIDENCE_ORIGIN) with a new key (credgate keygen --evidence-origin NEW), "+
		"the old origin %q in --evidence-previous-origin / CREDGATE_EVIDENCE_PREVIOUS_ORIGIN and the old verifier key in --evidence-previous-keys; "+
		"tell the auditors, and give them the old log's last checkpoint of %d records (%s); docs/OPERATIONS.md, Backup and restore",
		err, rb.Published.Origin, rb.Published.Size, rb.Source)
}

// logHalt is the evidence log as /readyz sees it: a log that stopped
// signing (a database rolled back under a running replica) fails every
// receipt, so the replica is not ready, and the section says why.
type logHalt struct{ log *evidence.Log }

func (h logHalt) Ping(context.Context) error { return h.log.Halted() }

func (h logHalt) Status(context.Context) any {
	if err := h.log.Halted(); err != nil {
		return map[string]string{"state": "halted", "error": err.Error()}
	}
	return map[string]string{"state": "signing", "origin": h.log.Origin()}
}

// logReadiness makes /readyz fail while the evidence log refuses to sign
// (evidence.ErrLogRolledBack), naming it ("evidence_log": "down", and its
// section "halted" with the reason).
func logReadiness(log *evidence.Log) []gateway.Option {
	h := logHalt{log}
	return []gateway.Option{gateway.WithReadiness("evidence_log", h), gateway.WithStatus("evidence_log", h)}
}
