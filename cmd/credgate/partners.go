package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/internal/config"
)

const partnersUsage = `Usage: credgate partners COMMAND [flags] [CLIENT_ID]

Administer the partner systems that call credgate, through its API, with an
administrator credential.

Commands:
  create  --name NAME [--role partner|auditor|admin] --action ACTION... [--subject-kinds organization,person]
          [--visibility standard|full] [--rate-limit 6000-M] [--region 440300] [--jwks FILE]
                                  register a partner; prints its client secret ONCE (none with --jwks)
  list    [--limit N]             list partners (all pages)
  show    CLIENT_ID               one partner
  update  CLIENT_ID [--name NAME] [--action ACTION...] [--subject-kinds K,...] [--visibility V] [--rate-limit R]
          [--region CODE]
                                  change a partner's name or scope
  rotate  CLIENT_ID [--overlap 24h] [--jwks FILE]
                                  new credentials; the old ones work for the overlap (0: stop now)
  revoke  CLIENT_ID               stop the partner's credentials and tokens

Every command takes:
  --url URL                 credgate's base URL (env CREDGATE_URL; default http://localhost:8080)
  --credentials FILE        administrator credential as JSON {client_id, client_secret}
                            (default: DATA-DIR/admin-credentials.json, written by serve on first start)
  --data-dir DIR            the server's data dir (env CREDGATE_DATA_DIR; default ./data)
  --config FILE             YAML configuration file (env CREDGATE_CONFIG): client.url, store.data_dir
  --client-id ID            administrator client id (env CREDGATE_ADMIN_CLIENT_ID)
  --json                    print the API's JSON answer
The administrator secret comes from CREDGATE_ADMIN_CLIENT_SECRET or the credentials file, never
from the command line (where other users of the machine could read it). The client id and its
secret always come from one place: --credentials FILE, when given, wins over
CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET (which are then ignored); else both
of those; else DATA-DIR/admin-credentials.json (whose client id --client-id must then match).
`

// The administrator credential's variables, which an explicit
// --credentials FILE overrides.
const (
	envAdminClientID     = "CREDGATE_ADMIN_CLIENT_ID"
	envAdminClientSecret = "CREDGATE_ADMIN_CLIENT_SECRET"
)

// stringList is a repeatable flag that also splits on commas.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

type clientFlags struct {
	credentials, clientID string
	json                  bool
	settings              *config.Loader // --url, --data-dir, --config and the environment
}

// verbFlags splits the command line of "credgate NOUN VERB [flags]": the
// verb, its arguments, and a flag set for it with the client flags
// registered, whose usage is usage. No verb, or a request for help, prints
// usage and returns errUsage.
func verbFlags(noun, usage string, args []string, stderr io.Writer) (string, []string, *flag.FlagSet, *clientFlags, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return "", nil, nil, nil, errUsage
	}
	fs := flag.NewFlagSet(noun+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cf := new(clientFlags)
	cf.register(fs)
	return args[0], args[1:], fs, cf, nil
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	// An explicit --credentials FILE is the credential: the
	// administrator's variables are then not read at all (not even to be
	// refused for coming one without the other).
	c.settings = config.NewLoader(clientSettings, config.WithEnviron(os.Environ), config.WithLookupEnv(func(k string) (string, bool) {
		if c.credentials != "" && (k == envAdminClientID || k == envAdminClientSecret) {
			return "", false
		}
		return os.LookupEnv(k)
	}))
	c.settings.Register(fs)
	fs.StringVar(&c.credentials, "credentials", "", "credential file, JSON {client_id, client_secret}; wins over CREDGATE_ADMIN_CLIENT_ID/SECRET (default DATA-DIR/admin-credentials.json)")
	fs.StringVar(&c.clientID, "client-id", "", "administrator client id (env CREDGATE_ADMIN_CLIENT_ID)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answer")
}

// client resolves the credential to call with (credential) and returns
// an API client that logs in with it at the configured URL.
func (c *clientFlags) client(opts ...client.Option) (*client.Client, error) {
	cfg, err := c.settings.Load()
	if err != nil {
		return nil, err
	}
	id, secret, err := resolveCredential(c.clientID, cfg.Access.AdminClientID, cfg.Access.AdminClientSecret, c.credentials, cfg.Store.DataDir)
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg.Client.URL, append([]client.Option{client.WithClientSecret(id, secret)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("--url %q is not an absolute URL", cfg.Client.URL)
	}
	return cl, nil
}

// resolveCredential picks the credential (client id and secret) to call
// with, the pair always from one source, never an id from one and a secret
// from another:
//
//   - --credentials FILE (path) given: the file's id and secret, whatever
//     CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET (or the
//     configuration file) say: the file named on the command line is the
//     one meant. A --client-id (flagID) other than the file's is refused.
//   - else the administrator secret of the environment or configuration
//     file, with --client-id or CREDGATE_ADMIN_CLIENT_ID (envID);
//   - else the file serve writes on first start (DATA-DIR's), whose id a
//     --client-id or CREDGATE_ADMIN_CLIENT_ID must match if given.
func resolveCredential(flagID, envID, envSecret, path, dataDir string) (string, string, error) {
	if path != "" {
		id, secret, err := readCredentialFile(path)
		if err != nil {
			return "", "", fmt.Errorf("--credentials: %w", err)
		}
		if flagID != "" && flagID != id {
			return "", "", fmt.Errorf("--client-id %q is not the client id of --credentials %s (%q): give one or the other", flagID, path, id)
		}
		return id, secret, nil
	}
	id, src := flagID, "--client-id"
	if id == "" {
		id, src = envID, "CREDGATE_ADMIN_CLIENT_ID"
	}
	if envSecret != "" {
		if id == "" {
			return "", "", errors.New("CREDGATE_ADMIN_CLIENT_SECRET is set without a client id: set CREDGATE_ADMIN_CLIENT_ID (or --client-id) with it, or use --credentials FILE")
		}
		return id, envSecret, nil
	}
	path = filepath.Join(dataDir, adminCredentialsFile)
	fid, secret, err := readCredentialFile(path)
	if err != nil {
		if id != "" {
			return "", "", fmt.Errorf("%s %q has no secret: set CREDGATE_ADMIN_CLIENT_SECRET with it, or use --credentials FILE (%w)", src, id, err)
		}
		return "", "", fmt.Errorf("no administrator credential: use --credentials FILE, set CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET, or point --data-dir (CREDGATE_DATA_DIR) at the server's data dir (%w)", err)
	}
	if id != "" && id != fid {
		return "", "", fmt.Errorf("%s %q has no secret: CREDGATE_ADMIN_CLIENT_SECRET is unset and %s is %q's; set the secret, or use --credentials FILE", src, id, path, fid)
	}
	return fid, secret, nil
}

// readCredentialFile reads a credential file, JSON {client_id,
// client_secret}, as serve and partners create --json write it.
func readCredentialFile(path string) (string, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var saved struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	if saved.ClientID == "" || saved.ClientSecret == "" {
		return "", "", fmt.Errorf("%s lacks a client_id or client_secret", path)
	}
	return saved.ClientID, saved.ClientSecret, nil
}

// adminCredential completes bench's administrator credential from the
// file serve writes on first start (path, or dataDir's) where id or secret
// is unset. The other commands resolve theirs with resolveCredential.
func adminCredential(id, secret, path, dataDir string) (string, string, error) {
	if secret == "" || id == "" {
		if path == "" {
			path = filepath.Join(dataDir, adminCredentialsFile)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", "", fmt.Errorf("no administrator credential: set CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET, use --credentials FILE, or point --data-dir (CREDGATE_DATA_DIR) at the server's data dir (%w)", err)
		}
		var saved struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal(b, &saved); err != nil {
			return "", "", fmt.Errorf("%s: %w", path, err)
		}
		if id == "" {
			id = saved.ClientID
		}
		if secret == "" {
			secret = saved.ClientSecret
		}
	}
	if id == "" || secret == "" {
		return "", "", errors.New("the administrator credential lacks a client id or secret")
	}
	return id, secret, nil
}

func printPartner(w io.Writer, p client.Partner) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	orNone := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(tw, "client_id\t%s\n", p.ClientID)
	fmt.Fprintf(tw, "name\t%s\n", p.Name)
	fmt.Fprintf(tw, "role\t%s\n", p.Role)
	fmt.Fprintf(tw, "status\t%s\n", p.Status)
	fmt.Fprintf(tw, "actions\t%s\n", orNone(strings.Join(p.Actions, ", ")))
	kinds := strings.Join(p.SubjectKinds, ", ")
	if kinds == "" {
		kinds = "organization, person"
	}
	fmt.Fprintf(tw, "subject_kinds\t%s\n", kinds)
	fmt.Fprintf(tw, "visibility\t%s\n", orNone(p.Visibility))
	fmt.Fprintf(tw, "rate_limit\t%s\n", orNone(p.RateLimit))
	region := p.Region
	if region == "" && p.Role == "partner" {
		region = "- (national measures only)"
	}
	fmt.Fprintf(tw, "region\t%s\n", orNone(region))
	fmt.Fprintf(tw, "auth_method\t%s\n", p.TokenEndpointAuthMethod)
	for _, c := range p.Credentials {
		exp := "no expiry"
		if c.ExpiresAt != nil {
			exp = "expires " + c.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "credential\t%s (%s, %s)\n", c.ID, c.Kind, exp)
	}
	fmt.Fprintf(tw, "created_at\t%s\n", p.CreatedAt.Format(time.RFC3339))
	if p.RevokedAt != nil {
		fmt.Fprintf(tw, "revoked_at\t%s\n", p.RevokedAt.Format(time.RFC3339))
	}
	if p.ClientSecret != "" {
		fmt.Fprintf(tw, "client_secret\t%s\n", p.ClientSecret)
	}
	tw.Flush()
}

// readJWKS reads a JWK Set file (or a single JWK) for --jwks and checks
// it with the rules the server applies (access.ParseJWKS), so that a bad
// key is named before anything is sent.
func readJWKS(path string) (json.RawMessage, error) {
	b, err := readLimited(path, 1<<20)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) == 0 {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(b, &one); err != nil || one["kty"] == nil {
			return nil, fmt.Errorf("%s is neither a JWK Set {\"keys\": [...]} nor a JWK", path)
		}
		set.Keys = []json.RawMessage{b}
	}
	whole, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, _, err := access.ParseJWKS(whole); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return whole, nil
}

// partnersCmd is "credgate partners".
func partnersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	verb, args, fs, cf, err := verbFlags("partners", partnersUsage, args, stderr)
	if err != nil {
		return err
	}
	var (
		name, role, visibility, rateLimit, jwksPath, region string
		actions, kinds                                      stringList
		overlap                                             time.Duration
		limit                                               int
	)
	switch verb {
	case "create", "update":
		fs.StringVar(&name, "name", "", "the partner's name")
		fs.Var(&actions, "action", "an action the partner may check (repeat, or comma-separate)")
		fs.Var(&kinds, "subject-kinds", "organization and/or person (default both)")
		fs.StringVar(&visibility, "visibility", "", "standard or full")
		fs.StringVar(&rateLimit, "rate-limit", "", "the partner's own quota, e.g. 6000-M")
		fs.StringVar(&region, "region", "", "the partner's jurisdiction, a GB/T 2260 code such as 440300 (default none: national measures only)")
		if verb == "create" {
			fs.StringVar(&role, "role", "partner", "partner, auditor or admin")
			fs.StringVar(&jwksPath, "jwks", "", "JWK Set file of public keys: the partner uses private_key_jwt and gets no secret")
		}
	case "rotate":
		fs.DurationVar(&overlap, "overlap", 24*time.Hour, "how long the current credentials keep working (0: stop now)")
		fs.StringVar(&jwksPath, "jwks", "", "replace the credentials with these public keys (JWK Set file)")
	case "list":
		fs.IntVar(&limit, "limit", 0, "at most this many partners (default all)")
	case "show", "revoke":
	default:
		fmt.Fprintf(stderr, "credgate partners: unknown command %q\n\n%s", verb, partnersUsage)
		return errUsage
	}
	// Flags may come before or after the client id.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	needID := verb == "show" || verb == "revoke" || verb == "rotate" || verb == "update"
	if needID != (len(rest) == 1) || len(rest) > 1 {
		fmt.Fprint(stderr, partnersUsage)
		return errUsage
	}
	api, err := cf.client()
	if err != nil {
		return err
	}
	// A connection failure names the URL and how to name another.
	defer func() { err = unreachable(api.BaseURL(), err) }()
	var p client.Partner
	switch verb {
	case "create":
		spec := client.PartnerSpec{Name: name, Role: role, Actions: actions, SubjectKinds: kinds, Visibility: visibility,
			RateLimit: rateLimit, Region: region}
		if jwksPath != "" {
			if spec.JWKS, err = readJWKS(jwksPath); err != nil {
				return err
			}
		}
		p, err = api.CreatePartner(ctx, spec)
	case "update":
		var patch client.PartnerPatch
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "name":
				patch.Name = &name
			case "action":
				a := []string(actions)
				patch.Actions = &a
			case "subject-kinds":
				k := []string(kinds)
				patch.SubjectKinds = &k
			case "visibility":
				patch.Visibility = &visibility
			case "rate-limit":
				patch.RateLimit = &rateLimit
			case "region":
				patch.Region = &region
			}
		})
		p, err = api.UpdatePartner(ctx, rest[0], patch)
	case "rotate":
		if overlap < 0 {
			return errors.New("--overlap must not be negative")
		}
		spec := client.RotateSpec{Overlap: overlap}
		if jwksPath != "" {
			if spec.JWKS, err = readJWKS(jwksPath); err != nil {
				return err
			}
		}
		p, err = api.RotatePartner(ctx, rest[0], spec)
	case "revoke":
		p, err = api.RevokePartner(ctx, rest[0])
	case "show":
		p, err = api.Partner(ctx, rest[0])
	case "list":
		return listPartners(ctx, api, limit, cf.json, stdout)
	}
	if err != nil {
		return err
	}
	if p.ClientSecret != "" {
		fmt.Fprintln(stderr, "The client secret is shown this once: hand it over securely now; credgate keeps only its hash.")
	}
	if cf.json {
		_, err := stdout.Write(append(p.Raw, '\n'))
		return err
	}
	printPartner(stdout, p)
	return nil
}

// listPartners prints every partner (following the pages), or at most
// limit of them.
func listPartners(ctx context.Context, api *client.Client, limit int, asJSON bool, stdout io.Writer) error {
	var all []client.Partner
	after := ""
	for {
		page, err := api.ListPartners(ctx, 1000, after)
		if err != nil {
			return err
		}
		all = append(all, page.Partners...)
		if page.Next == "" || (limit > 0 && len(all) >= limit) {
			break
		}
		after = page.Next
	}
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	if asJSON {
		raws := make([]json.RawMessage, len(all))
		for i, p := range all {
			raws[i] = p.Raw
		}
		b, _ := json.Marshal(map[string]any{"partners": raws})
		_, err := stdout.Write(append(b, '\n'))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tROLE\tSTATUS\tAUTH\tACTIONS\tNAME")
	for _, p := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ClientID, p.Role, p.Status, p.TokenEndpointAuthMethod, strings.Join(p.Actions, ","), p.Name)
	}
	return tw.Flush()
}
