package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// verifyArchive is verify --archive: the archive with no server, then
// each receipt against it. Exit status as verify's: 1 when the archive
// or a receipt fails, 3 when every receipt verified but one's body was
// erased.
func verifyArchive(ctx context.Context, path string, keys []string, origin string, receipts []string, stdout io.Writer) error {
	var vs note.Verifiers
	if len(keys) > 0 {
		var err error
		if vs, err = loadVerifiers(keys); err != nil {
			return err
		}
	}
	raws := make([][]byte, 0, len(receipts))
	var plain []string
	failed := 0
	for _, p := range receipts {
		raw, err := readLimited(p, evidence.MaxReceiptSize)
		if err != nil {
			return err
		}
		if _, ok := promiseIn(raw); ok || evidence.IsScreeningReceipt(raw) {
			fmt.Fprintf(stdout, "%s: FAILED: --archive re-proves evidence receipts only; verify a promise or a screening's chained receipt without --archive\n", p)
			failed++
			continue
		}
		raws = append(raws, raw)
		plain = append(plain, p)
	}
	rep, results, err := audit.VerifyArchive(ctx, path, vs, origin, raws)
	if errors.Is(err, evidence.ErrArchive) {
		fmt.Fprintf(stdout, "%s: FAILED: %s\n", path, strings.TrimPrefix(err.Error(), evidence.ErrArchive.Error()+": "))
		return fmt.Errorf("%w: archive %s", errVerification, path)
	}
	if err != nil {
		return fmt.Errorf("archive %s: %w", path, err)
	}
	fmt.Fprintln(stdout, archiveSummary(path, rep))
	if !rep.Pinned {
		fmt.Fprintf(stdout, "keys: verified with the archive's own keys (%s): an archive's keys prove only that it agrees with itself; "+
			"confirm them out of band and pin them with --key\n", strings.Join(rep.Keys, ", "))
	}
	if !rep.Bodies {
		fmt.Fprintln(stdout, "bodies: not archived: each record's identity and record hash are proven, its body is not in the archive")
	} else if rep.Erased > 0 {
		pos := make([]string, len(rep.ErasedAt))
		for i, p := range rep.ErasedAt {
			pos[i] = fmt.Sprint(p)
		}
		more := ""
		if uint64(len(rep.ErasedAt)) < rep.Erased {
			more = ", …"
		}
		fmt.Fprintf(stdout, "erased: %d records' bodies were erased (each still proven in the tree), at positions %s%s\n", rep.Erased, strings.Join(pos, ", "), more)
	}
	erased := 0
	for i, res := range results {
		p, v := plain[i], res.Verified
		in := fmt.Sprintf("; in the archive: the archived tree of %d records has its checkpoint's root", v.Checkpoint.Size)
		if res.ErasedInArchive {
			in += " (the archive holds the record with its body erased)"
		}
		switch {
		case errors.Is(res.Err, evidence.ErrRecordErased):
			fmt.Fprintf(stdout, "%s: ERASED: record %d is in the signed log; its body was erased (%s record %s by %q, record hash %x, in the checkpoint of %d records of %q)%s\n",
				p, v.Record.Index, v.Record.Kind, v.Record.ID, v.Record.Partner, v.Record.Hash, v.Checkpoint.Size, v.Checkpoint.Origin, in)
			erased++
		case res.Err != nil:
			fmt.Fprintf(stdout, "%s: FAILED: %v\n", p, res.Err)
			failed++
		default:
			fmt.Fprintf(stdout, "%s: OK: %s record %s by %q at %s is record %d of %q, in the checkpoint of %d records signed by %s%s\n",
				p, v.Record.Kind, v.Record.ID, v.Record.Partner, v.Record.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
				v.Record.Index, v.Checkpoint.Origin, v.Checkpoint.Size, strings.Join(v.KeyNames, ", "), in)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d receipts", errVerification, failed, len(receipts))
	}
	if erased > 0 {
		return &exitError{code: exitErased, err: fmt.Errorf("%d of %d receipts are of records whose body was erased", erased, len(receipts))}
	}
	return nil
}
