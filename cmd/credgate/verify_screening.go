package main

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// verifyScreening checks a screening's chained receipt: the subject's
// answer in the job's tree, and the job's record in the signed log.
func verifyScreening(path string, raw []byte, vs note.Verifiers, origin string, stdout io.Writer) error {
	r, err := evidence.ParseScreeningReceipt(raw)
	if err != nil {
		return err
	}
	v, err := evidence.VerifyScreeningReceipt(r, vs)
	if err != nil {
		return err
	}
	if origin != "" && v.Job.Checkpoint.Origin != origin {
		return fmt.Errorf("%w: the checkpoint is of origin %q, not %q", evidence.ErrCheckpointFormat, v.Job.Checkpoint.Origin, origin)
	}
	fmt.Fprintf(stdout, "%s: OK: subject %s (position %d in the file, as the receipt says: not covered by the proofs) is %s in screening %s: answer %d of the job's %d, whose record by %q at %s is record %d of %q, in the checkpoint of %d records signed by %s\n",
		path, v.SubjectID, v.Line, v.Outcome, v.ScreeningID, v.LeafIndex, v.TreeSize, v.Job.Record.Partner,
		v.Job.Record.At.UTC().Format("2006-01-02T15:04:05.000000Z"), v.Job.Record.Index, v.Job.Checkpoint.Origin,
		v.Job.Checkpoint.Size, strings.Join(v.Job.KeyNames, ", "))
	return nil
}
