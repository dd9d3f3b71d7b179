package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/config"
)

// exitAuditUnfinished is audit's status when the log could not be read
// (the server unreachable, failing or refusing): nothing was verified, the
// state file is untouched, and a scheduled job must tell that from 1, a
// log that failed verification.
const exitAuditUnfinished = 5

// auditCmd fetches the log's latest checkpoint, proves it consistent with
// the one seen last time (kept in a local state file), and with --full
// checks every stored record against the signed tree. The work is
// client/audit's; this is flags and printing.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The server's URL is the client.url setting every client command
	// reads (--url, CREDGATE_URL, --config), not a flag of its own.
	settings := config.NewLoader([]string{"client.url"})
	settings.Register(fs)
	var keys keyFlags
	fs.Var(&keys, "key", "verifier key (name+hash+key) or a file holding keys; repeatable")
	statePath := fs.String("state", "credgate-audit.json", "file keeping the last verified checkpoint")
	full := fs.Bool("full", false, "also check every stored record against the signed tree (needs an auditor credential)")
	tiles := fs.Bool("tiles", false, "build the consistency proof from the log's tlog-tiles rather than asking for it")
	credFile := fs.String("credentials", "", "for --full: a JSON file {\"client_id\", \"client_secret\"} of an auditor (default: env CREDGATE_AUDIT_CLIENT_ID/SECRET)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each request")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: credgate audit --key KEY [--url URL] [--state FILE] [--full] [--tiles]")
		fmt.Fprintln(stderr, "Exit status: 0 verified; 1 the log failed verification, or the state file or keys are unusable (a setup error); 2 usage; 5 the log could not be read, nothing verified.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || len(keys) == 0 || fs.NArg() != 0 {
		if err == nil {
			fs.Usage()
		}
		return errUsage
	}
	cfg, err := settings.Load()
	if err != nil {
		return err
	}
	vs, err := loadVerifiers(keys)
	if err != nil {
		return err
	}
	opts := []client.Option{client.WithTimeout(*timeout)}
	if *full {
		id, secret, err := auditCredential(*credFile)
		if err != nil {
			return err
		}
		opts = append(opts, client.WithClientSecret(id, secret))
	}
	c, err := client.New(cfg.Client.URL, opts...)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	prev, err := audit.LoadState(*statePath)
	if err != nil {
		return err
	}
	var aopts []audit.Option
	if *tiles {
		aopts = append(aopts, audit.WithTiles(c))
	}
	a := audit.New(c, vs, aopts...)
	rep, err := a.Follow(ctx, prev)
	if errors.Is(err, audit.ErrCheckpoint) {
		why := strings.TrimPrefix(err.Error(), audit.ErrCheckpoint.Error()+": ")
		fmt.Fprintf(stdout, "FAILED: the served checkpoint: %s\n", why)
		if errors.Is(err, evidence.ErrCheckpointSignature) && strings.Contains(why, "not trusted here") {
			fmt.Fprintln(stdout, "hint: if the log's key was rotated, pin the new key beside the old one, once you have it from the operator out of band (a key fetched from the server it is to check proves nothing)")
		}
		return fmt.Errorf("%w: checkpoint", errVerification)
	}
	if errors.Is(err, audit.ErrState) {
		// Judged before any request: the auditor's own setup, never an
		// outage (5), which a scheduled job would retry forever.
		fmt.Fprintf(stdout, "FAILED: the state file %s: %v\n", *statePath, err)
		fmt.Fprintln(stdout, "hint: its checkpoint must verify with a --key given here. After the log's key was rotated, keep the old key pinned beside the new one "+
			"(--key OLD --key NEW, or both in the keys file): the saved checkpoint stays signed by the old one. A state file that was edited is no starting point: restore it from your copy.")
		return fmt.Errorf("%w: state file", errVerification)
	}
	if err != nil {
		return &exitError{code: exitAuditUnfinished, err: unreachable(cfg.Client.URL, err)}
	}
	cp := rep.Checkpoint
	fmt.Fprintf(stdout, "checkpoint: %q, %d records, root %s\n", cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]))
	if prev == nil {
		fmt.Fprintf(stdout, "no earlier checkpoint in %s: trusting this one as the starting point\n", *statePath)
	}
	if *full {
		if err := a.CheckRecords(ctx, rep); errors.Is(err, audit.ErrServedInconsistent) {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			return fmt.Errorf("%w: records", errVerification)
		} else if err != nil {
			return &exitError{code: exitAuditUnfinished, err: unreachable(cfg.Client.URL, err)}
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	if !rep.OK() {
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "PROBLEM: %s\n", p)
		}
		return fmt.Errorf("%w: %d problems (the state file is left as it was)", errVerification, len(rep.Problems))
	}
	if err := audit.SaveState(*statePath, rep.State(time.Now())); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	fmt.Fprintf(stdout, "OK: checkpoint of %d records verified and saved to %s\n", cp.Size, *statePath)
	return nil
}

// auditCredential reads the auditor credential from credFile, or else from
// CREDGATE_AUDIT_CLIENT_ID/SECRET. The secret is never printed.
func auditCredential(credFile string) (id, secret string, err error) {
	id, secret = os.Getenv("CREDGATE_AUDIT_CLIENT_ID"), os.Getenv("CREDGATE_AUDIT_CLIENT_SECRET")
	if credFile != "" {
		b, err := readLimited(credFile, 64<<10)
		if err != nil {
			return "", "", fmt.Errorf("--credentials: %w", err)
		}
		var c struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return "", "", fmt.Errorf("--credentials %s: not a JSON credential file", credFile)
		}
		id, secret = c.ClientID, c.ClientSecret
	}
	if id == "" || secret == "" {
		return "", "", errors.New("--full needs an auditor credential: --credentials FILE, or CREDGATE_AUDIT_CLIENT_ID and CREDGATE_AUDIT_CLIENT_SECRET")
	}
	return id, secret, nil
}

// auditState is the state file's content (tests read it).
type auditState = audit.State
