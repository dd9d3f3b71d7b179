package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// auditState is what `credgate audit` remembers between runs: the last
// checkpoint it verified. Keep it (or copies of it) where credgate's
// operators cannot change it.
type auditState struct {
	Origin     string    `json:"origin"`
	Size       uint64    `json:"size"`
	RootHash   string    `json:"root_hash"`
	Checkpoint string    `json:"checkpoint"`
	VerifiedAt time.Time `json:"verified_at"`
}

// maxAuditProblems caps how many problems one run reports.
const maxAuditProblems = 100

type auditor struct {
	base    *url.URL
	client  *http.Client
	vs      note.Verifiers
	out     io.Writer
	token   string
	problem []string
}

func (a *auditor) report(format string, args ...any) {
	if len(a.problem) < maxAuditProblems {
		a.problem = append(a.problem, fmt.Sprintf(format, args...))
	}
}

// auditCmd fetches the log's latest checkpoint, proves it consistent with
// the one seen last time (kept in a local state file), and with --full
// checks every stored record against the signed tree.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var keys keyFlags
	fs.Var(&keys, "key", "verifier key (name+hash+key) or a file holding keys; repeatable")
	rawURL := fs.String("url", "", "credgate's base URL, e.g. https://credgate.example")
	statePath := fs.String("state", "credgate-audit.json", "file keeping the last verified checkpoint")
	full := fs.Bool("full", false, "also check every stored record against the signed tree (needs an auditor credential)")
	credFile := fs.String("credentials", "", "for --full: a JSON file {\"client_id\", \"client_secret\"} of an auditor (default: env CREDGATE_AUDIT_CLIENT_ID/SECRET)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each request")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: credgate audit --key KEY --url URL [--state FILE] [--full]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || len(keys) == 0 || *rawURL == "" || fs.NArg() != 0 {
		if err == nil {
			fs.Usage()
		}
		return errUsage
	}
	base, err := url.Parse(strings.TrimRight(*rawURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL", *rawURL)
	}
	vs, err := loadVerifiers(keys)
	if err != nil {
		return err
	}
	a := &auditor{base: base, client: &http.Client{Timeout: *timeout}, vs: vs, out: stdout}

	var prev *auditState
	if b, err := os.ReadFile(*statePath); err == nil {
		prev = &auditState{}
		if err := json.Unmarshal(b, prev); err != nil {
			return fmt.Errorf("state file %s: %w", *statePath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state file: %w", err)
	}

	var cpView struct {
		Checkpoint string `json:"checkpoint"`
	}
	if err := a.getJSON(ctx, "/v1/evidence/checkpoint", nil, &cpView); err != nil {
		return err
	}
	origin := ""
	if prev != nil {
		origin = prev.Origin
	}
	cp, err := evidence.OpenCheckpoint([]byte(cpView.Checkpoint), vs, origin)
	if err != nil {
		fmt.Fprintf(stdout, "FAILED: the served checkpoint: %v\n", err)
		return fmt.Errorf("%w: checkpoint", errVerification)
	}
	fmt.Fprintf(stdout, "checkpoint: %q, %d records, root %s\n", cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]))

	if prev == nil {
		fmt.Fprintf(stdout, "no earlier checkpoint in %s: trusting this one as the starting point\n", *statePath)
	} else if err := a.checkConsistency(ctx, prev, cp); err != nil {
		return err
	}
	if *full {
		if err := a.login(ctx, *credFile); err != nil {
			return err
		}
		if err := a.checkRecords(ctx, cp); err != nil {
			return err
		}
	}
	if len(a.problem) > 0 {
		for _, p := range a.problem {
			fmt.Fprintf(stdout, "PROBLEM: %s\n", p)
		}
		return fmt.Errorf("%w: %d problems (the state file is left as it was)", errVerification, len(a.problem))
	}
	st := auditState{Origin: cp.Origin, Size: cp.Size, RootHash: base64.StdEncoding.EncodeToString(cp.Root[:]),
		Checkpoint: string(cp.Note), VerifiedAt: time.Now().UTC()}
	if err := writeStateFile(*statePath, st); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	fmt.Fprintf(stdout, "OK: checkpoint of %d records verified and saved to %s\n", cp.Size, *statePath)
	return nil
}

// checkConsistency proves that the new checkpoint extends the one kept.
func (a *auditor) checkConsistency(ctx context.Context, prev *auditState, cp evidence.SignedCheckpoint) error {
	// The kept checkpoint is re-verified: a state file edited by hand is
	// no starting point.
	old, err := evidence.OpenCheckpoint([]byte(prev.Checkpoint), a.vs, prev.Origin)
	if err != nil {
		return fmt.Errorf("the checkpoint in the state file does not verify: %w", err)
	}
	switch {
	case cp.Size < old.Size:
		a.report("TRUNCATION: the log had %d records at the last audit (%s) and now claims %d: records were removed",
			old.Size, prev.VerifiedAt.Format(time.RFC3339), cp.Size)
	case cp.Size == old.Size:
		if cp.Root != old.Root {
			a.report("REWRITE: the log still has %d records but its root changed from %x to %x: records were altered, replaced or reordered",
				cp.Size, old.Root, cp.Root)
		} else {
			fmt.Fprintf(a.out, "consistent: unchanged since the last audit (%d records)\n", cp.Size)
		}
	default:
		var view struct {
			Proof []string `json:"proof"`
		}
		q := url.Values{"from": {strconv.FormatUint(old.Size, 10)}, "to": {strconv.FormatUint(cp.Size, 10)}}
		if err := a.getJSON(ctx, "/v1/evidence/consistency", q, &view); err != nil {
			return err
		}
		p, err := decodeProof(view.Proof)
		if err != nil {
			a.report("the consistency proof from %d to %d is malformed: %v", old.Size, cp.Size, err)
			return nil
		}
		if err := evidence.VerifyConsistency(old.Size, cp.Size, p, old.Root, cp.Root); err != nil {
			a.report("REWRITE: the log of %d records seen at the last audit is not a prefix of the log of %d records: "+
				"the consistency proof fails (%v): records before index %d were altered, deleted or reordered", old.Size, cp.Size, err, old.Size)
			return nil
		}
		fmt.Fprintf(a.out, "consistent: the log of %d records extends the %d seen at the last audit\n", cp.Size, old.Size)
	}
	return nil
}

func decodeProof(in []string) ([][evidence.HashSize]byte, error) {
	if len(in) > 128 {
		return nil, fmt.Errorf("%d hashes", len(in))
	}
	out := make([][evidence.HashSize]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != evidence.HashSize {
			return nil, fmt.Errorf("hash %d is not base64 of %d bytes", i, evidence.HashSize)
		}
		out[i] = [evidence.HashSize]byte(b)
	}
	return out, nil
}

type auditLeafJSON struct {
	Index    uint64 `json:"index"`
	TreeLeaf string `json:"tree_leaf"`
	Record   *struct {
		ID         string        `json:"id"`
		Kind       evidence.Kind `json:"kind"`
		Partner    string        `json:"partner"`
		At         time.Time     `json:"at"`
		RecordHash string        `json:"record_hash"`
	} `json:"record"`
	Body evidence.BodyStatus `json:"body"`
}

// checkRecords reads every position of the signed tree with the record
// stored there: the served leaves must rebuild the signed root, and every
// record must hash to its leaf. A record that hashes to another position's
// leaf was moved.
func (a *auditor) checkRecords(ctx context.Context, cp evidence.SignedCheckpoint) error {
	tree, err := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	if err != nil {
		return err
	}
	// Only mismatches are remembered, so memory stays small for a sound
	// log of any size.
	movedFrom := map[[evidence.HashSize]byte]uint64{} // a record's leaf → where the record is
	expected := map[[evidence.HashSize]byte]uint64{}  // a signed leaf → where it should be
	for from := uint64(0); from < cp.Size; from += evidence.MaxAuditPage {
		to := min(from+evidence.MaxAuditPage, cp.Size)
		var page struct {
			Leaves []auditLeafJSON `json:"leaves"`
		}
		q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
		if err := a.getJSON(ctx, "/v1/evidence/leaves", q, &page); err != nil {
			return err
		}
		if uint64(len(page.Leaves)) != to-from {
			return fmt.Errorf("leaves %d..%d: got %d", from, to, len(page.Leaves))
		}
		for i, l := range page.Leaves {
			idx := from + uint64(i)
			leaf, err := decodeHex(l.TreeLeaf)
			if err != nil || l.Index != idx {
				return fmt.Errorf("leaf %d: malformed", idx)
			}
			tree.Append(leaf, nil)
			switch {
			case l.Body == evidence.BodyMissing || l.Record == nil:
				a.report("DELETED: record %d is missing from the log (its leaf %x is signed)", idx, leaf)
				continue
			case l.Body == evidence.BodyAltered:
				a.report("ALTERED: record %d (%s): its body no longer matches its record hash", idx, l.Record.ID)
			}
			rh, err := decodeHex(l.Record.RecordHash)
			if err != nil {
				return fmt.Errorf("record %d: malformed hash", idx)
			}
			got := evidence.LeafHash(evidence.Record{ID: l.Record.ID, Kind: l.Record.Kind, Partner: l.Record.Partner, At: l.Record.At, Hash: rh})
			if got != leaf {
				movedFrom[got] = idx
				expected[leaf] = idx
			}
		}
	}
	if root := tree.Root(); root != cp.Root {
		a.report("REWRITE: the tree's leaves do not rebuild the signed root (%x, not %x): the stored tree was altered", root, cp.Root)
	}
	for leaf, at := range movedFrom {
		if want, ok := expected[leaf]; ok {
			a.report("REORDERED: the record signed at index %d is stored at index %d", want, at)
			delete(expected, leaf)
			continue
		}
		a.report("ALTERED: record %d: its id, kind, partner, time or record hash no longer match the leaf the log signed", at)
	}
	fmt.Fprintf(a.out, "records: checked %d positions against the signed tree\n", cp.Size)
	return nil
}

func decodeHex(s string) ([evidence.HashSize]byte, error) {
	var h [evidence.HashSize]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != evidence.HashSize {
		return h, errors.New("not a hex hash")
	}
	copy(h[:], b)
	return h, nil
}

// login gets an auditor token with the credential in credFile, or else
// in CREDGATE_AUDIT_CLIENT_ID/SECRET. The secret is never printed.
func (a *auditor) login(ctx context.Context, credFile string) error {
	id, secret := os.Getenv("CREDGATE_AUDIT_CLIENT_ID"), os.Getenv("CREDGATE_AUDIT_CLIENT_SECRET")
	if credFile != "" {
		b, err := readLimited(credFile, 64<<10)
		if err != nil {
			return fmt.Errorf("--credentials: %w", err)
		}
		var c struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("--credentials %s: not a JSON credential file", credFile)
		}
		id, secret = c.ClientID, c.ClientSecret
	}
	if id == "" || secret == "" {
		return errors.New("--full needs an auditor credential: --credentials FILE, or CREDGATE_AUDIT_CLIENT_ID and CREDGATE_AUDIT_CLIENT_SECRET")
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base.String()+"/v1/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.do(req, &tok); err != nil {
		return fmt.Errorf("auditor token: %w", err)
	}
	a.token = tok.AccessToken
	return nil
}

func (a *auditor) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	u := a.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	return a.do(req, v)
}

func (a *auditor) do(req *http.Request, v any) error {
	res, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, unreachableHint(a.base.String(), "check --url", err))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, res.Status, bytes.TrimSpace(body[:min(len(body), 500)]))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// writeStateFile replaces path atomically (write, fsync, rename).
func writeStateFile(path string, st auditState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credgate-audit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
