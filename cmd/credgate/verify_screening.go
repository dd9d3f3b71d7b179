package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// verifyScreening checks a screening's chained receipt: the subject's
// answer in the job's tree, and the job's record in the signed log (and,
// with --url, that record's checkpoint a prefix of the log's now).
func verifyScreening(ctx context.Context, path string, raw []byte, vs note.Verifiers, origin string, on *online, stdout io.Writer) error {
	var v evidence.VerifiedScreening
	var err error
	if on != nil {
		v, err = on.a.VerifyScreeningReceiptIn(ctx, raw, on.cur)
	} else {
		v, err = audit.VerifyScreeningReceipt(raw, vs, origin)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK: subject %s (position %d in the file, as the receipt says: not covered by the proofs) is %s in screening %s: answer %d of the job's %d, whose record by %q at %s is record %d of %q, in the checkpoint of %d records signed by %s%s\n",
		path, v.SubjectID, v.Line, v.Outcome, v.ScreeningID, v.LeafIndex, v.TreeSize, v.Job.Record.Partner,
		v.Job.Record.At.UTC().Format("2006-01-02T15:04:05.000000Z"), v.Job.Record.Index, v.Job.Checkpoint.Origin,
		v.Job.Checkpoint.Size, strings.Join(v.Job.KeyNames, ", "), on.suffix())
	return nil
}
