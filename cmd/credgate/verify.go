package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// keyFlags is the repeatable --key flag.
type keyFlags []string

func (l *keyFlags) String() string     { return strings.Join(*l, ",") }
func (l *keyFlags) Set(v string) error { *l = append(*l, v); return nil }

// errVerification is a receipt or log that does not verify: exit status 1
// with the precise reason already printed.
var errVerification = errors.New("verification failed")

// exitErased is verify's status when every receipt verified but at least
// one is of an erased record: its place in the log is proven, its body is
// gone. A script telling "all proven" from "proven, body erased" needs
// more than 0; a failure (1) still wins.
const exitErased = 3

// exitPromised is verify's status when nothing failed but at least one
// file is a promise of inclusion: signed by a replica, not yet proven in
// the log. A script doing "verify && archive" must not take it for proof;
// it outranks exitErased, whose records are proven in the tree.
const exitPromised = 4

// errPromised marks a promise that verified as a promise.
var errPromised = errors.New("inclusion promised, not yet proven")

// exitVerifyUnfinished is verify's status with --url when the log could
// not be read (unreachable, failing): the receipts were not re-proven
// against today's log, neither way; a failure (1) still wins. The same
// status as audit's for the same reason.
const exitVerifyUnfinished = exitAuditUnfinished

// online is what verify --url re-proves receipts against: the log's
// checkpoint now, verified, and the auditor that asks for consistency
// proofs to it.
type online struct {
	a   *audit.Auditor
	cur evidence.SignedCheckpoint
	url string
}

// suffix is what an OK line adds when the receipt was re-proven.
func (o *online) suffix() string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("; still in the log at %s: its checkpoint of %d records now (root %x) extends the receipt's", o.url, o.cur.Size, o.cur.Root[:8])
}

// verifyCmd checks receipts offline: record hash, leaf, checkpoint
// signature and inclusion proof, with no server (client/audit does the
// work). With --url it also proves each receipt's checkpoint a prefix of
// the log's checkpoint now: offline, a receipt of a record lost to a
// rollback still verifies.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var keys keyFlags
	fs.Var(&keys, "key", "verifier key (name+hash+key, as GET /v1/evidence/keys serves it) or a file holding keys; repeatable")
	origin := fs.String("origin", "", "require checkpoints of this origin")
	// Its own flag, not the client.url setting (CREDGATE_URL) the other
	// client commands read: verify goes online only when told to.
	url := fs.String("url", "", "also prove each receipt still in the log this credgate serves now (public routes: no credential)")
	timeout := fs.Duration("timeout", 30*time.Second, "with --url: timeout of each request")
	archive := fs.String("archive", "", "verify an archive (credgate archive: a directory or a .tar) with no server, and each receipt against it; without --key, with the archive's own keys")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: credgate verify --key KEY [--key KEY…] [--origin ORIGIN] [--url URL] RECEIPT.json… (- for standard input)")
		fmt.Fprintln(stderr, "       credgate verify --archive PATH [--key KEY…] [--origin ORIGIN] [RECEIPT.json…]")
		fmt.Fprintln(stderr, "With --archive, the archive is verified offline (every entry, tile and checkpoint) and each receipt re-proven in it: its checkpoint's root is the archived tree's at its size.")
		fmt.Fprintln(stderr, "A screening's chained receipt (credgate screen --receipts) is verified link by link: the answer in the job's tree, the job's record in the log.")
		fmt.Fprintln(stderr, "A spooled check's promise of inclusion (or the answer carrying it) is verified too, and reported as promised, not proven.")
		fmt.Fprintln(stderr, "The receipt of an erased record (body and salt deleted) is verified to the signed log and reported ERASED.")
		fmt.Fprintln(stderr, "With --url, each receipt's checkpoint must also be a prefix of the log's checkpoint now (a consistency proof): a receipt of a log since rolled back or forked FAILS.")
		fmt.Fprintln(stderr, "Exit status: 0 all verified; 1 a receipt failed; 2 usage; 3 all verified, but a record's body was erased; 4 none failed, but a promise is not yet a proof; "+
			"5 with --url, the log could not be read, receipts not re-proven.")
		fs.PrintDefaults()
	}
	// Flags may stand before or after the receipts.
	paths, err := parseClientArgs(fs, args)
	if err != nil {
		return err
	}
	if *archive != "" {
		if *url != "" {
			fmt.Fprintln(stderr, "credgate verify: --archive and --url exclude each other: an archive is verified with no server")
			return errUsage
		}
		return verifyArchive(ctx, *archive, keys, *origin, paths, stdout)
	}
	if len(keys) == 0 || len(paths) == 0 {
		fs.Usage()
		return errUsage
	}
	vs, err := loadVerifiers(keys)
	if err != nil {
		return err
	}
	var on *online
	if *url != "" {
		if on, err = goOnline(ctx, *url, *timeout, vs, *origin, stdout); err != nil {
			return err
		}
	}
	failed, erased, promised, unfinished := 0, 0, 0, 0
	for _, path := range paths {
		switch err := verifyOne(ctx, path, vs, *origin, on, stdout); {
		case errors.Is(err, evidence.ErrRecordErased):
			erased++
		case errors.Is(err, errPromised):
			promised++
		case errors.Is(err, audit.ErrLogUnread):
			fmt.Fprintf(stdout, "%s: UNFINISHED: verified offline, but not re-proven in today's log: %v\n", path, unreachableHint(on.url, "use --url to name another", err))
			unfinished++
		case err != nil:
			fmt.Fprintf(stdout, "%s: FAILED: %v\n", path, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d receipts", errVerification, failed, len(paths))
	}
	if unfinished > 0 {
		return &exitError{code: exitVerifyUnfinished, err: fmt.Errorf("%d of %d receipts could not be re-proven in the log at %s", unfinished, len(paths), on.url)}
	}
	if promised > 0 {
		return &exitError{code: exitPromised, err: fmt.Errorf("%d of %d files are promises of inclusion, not yet proofs: fetch their receipts once the spool is integrated", promised, len(paths))}
	}
	if erased > 0 {
		return &exitError{code: exitErased, err: fmt.Errorf("%d of %d receipts are of records whose body was erased", erased, len(paths))}
	}
	return nil
}

// goOnline fetches and verifies the log's checkpoint now, once for every
// receipt: a checkpoint that does not verify is a failure (1), a log that
// cannot be read unfinished (5).
func goOnline(ctx context.Context, base string, timeout time.Duration, vs note.Verifiers, origin string, stdout io.Writer) (*online, error) {
	c, err := client.New(base, client.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	a := audit.New(c, vs, audit.WithOrigin(origin))
	cur, err := a.Current(ctx)
	if errors.Is(err, audit.ErrCheckpoint) {
		why := strings.TrimPrefix(err.Error(), audit.ErrCheckpoint.Error()+": ")
		fmt.Fprintf(stdout, "FAILED: the checkpoint %s serves now: %s\n", base, why)
		return nil, fmt.Errorf("%w: checkpoint", errVerification)
	}
	if err != nil {
		return nil, &exitError{code: exitVerifyUnfinished, err: fmt.Errorf("nothing verified: %w", unreachableHint(base, "use --url to name another", err))}
	}
	return &online{a: a, cur: cur, url: base}, nil
}

func verifyOne(ctx context.Context, path string, vs note.Verifiers, origin string, on *online, stdout io.Writer) error {
	raw, err := readLimited(path, evidence.MaxReceiptSize)
	if err != nil {
		return err
	}
	if p, ok := promiseIn(raw); ok {
		// A promise names no checkpoint: there is nothing to re-prove
		// until it is a receipt.
		return verifyPromise(path, p, vs, origin, stdout)
	}
	if evidence.IsScreeningReceipt(raw) {
		return verifyScreening(ctx, path, raw, vs, origin, on, stdout)
	}
	var v evidence.Verified
	if on != nil {
		v, err = on.a.VerifyReceiptIn(ctx, raw, on.cur)
	} else {
		v, err = audit.VerifyReceipt(raw, vs, origin)
	}
	if errors.Is(err, evidence.ErrRecordErased) {
		fmt.Fprintf(stdout, "%s: ERASED: record %d is in the signed log; its body was erased (%s record %s by %q at %s, record hash %x, in the checkpoint of %d records of %q signed by %s)%s\n",
			path, v.Record.Index, v.Record.Kind, v.Record.ID, v.Record.Partner, v.Record.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
			v.Record.Hash, v.Checkpoint.Size, v.Checkpoint.Origin, strings.Join(v.KeyNames, ", "), on.suffix())
		return err
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK: %s record %s by %q at %s is record %d of %q, in the checkpoint of %d records signed by %s%s\n",
		path, v.Record.Kind, v.Record.ID, v.Record.Partner, v.Record.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
		v.Record.Index, v.Checkpoint.Origin, v.Checkpoint.Size, strings.Join(v.KeyNames, ", "), on.suffix())
	return nil
}

// readLimited reads a file (or standard input for "-") of at most limit
// bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// loadVerifiers reads each --key: a verifier key itself, or a file holding
// verifier keys one per line, or the JSON that GET /v1/evidence/keys
// serves.
func loadVerifiers(args []string) (note.Verifiers, error) {
	var keys []string
	for _, a := range args {
		a = strings.TrimSpace(a)
		if strings.HasPrefix(a, "PRIVATE+KEY+") {
			// Never echo a private key back.
			return nil, errors.New("--key is a private signer key; give the verifier key (GET /v1/evidence/keys)")
		}
		if _, err := note.NewVerifier(a); err == nil {
			keys = append(keys, a)
			continue
		}
		b, err := readLimited(a, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("--key %s: not a verifier key, nor a readable file: %w", a, err)
		}
		ks, err := audit.ParseKeys(b)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", a, err)
		}
		if len(ks) == 0 {
			// Said here: audit.Verifiers would say no key was given at all.
			return nil, fmt.Errorf("--key %s: the file holds no verifier key (it is empty, or only comments); want one key a line, or the keys document of GET /v1/evidence/keys", a)
		}
		keys = append(keys, ks...)
	}
	return audit.Verifiers(keys)
}
