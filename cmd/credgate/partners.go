package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/credgate/credgate/access"
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
from the command line (where other users of the machine could read it).
`

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

// adminClient calls the API as an administrator.
type adminClient struct {
	base   string
	http   *http.Client
	id     string
	secret string
	token  string
}

type clientFlags struct {
	credentials, clientID string
	json                  bool
	settings              *config.Loader // --url, --data-dir, --config and the environment
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.settings = config.NewLoader(clientSettings)
	c.settings.Register(fs)
	fs.StringVar(&c.credentials, "credentials", "", "administrator credential file (default DATA-DIR/admin-credentials.json)")
	fs.StringVar(&c.clientID, "client-id", "", "administrator client id (env CREDGATE_ADMIN_CLIENT_ID)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON answer")
}

// client resolves the administrator credential: the environment first,
// then the credentials file.
func (c *clientFlags) client() (*adminClient, error) {
	cfg, err := c.settings.Load()
	if err != nil {
		return nil, err
	}
	id, secret := c.clientID, cfg.Access.AdminClientSecret
	if id == "" {
		id = cfg.Access.AdminClientID
	}
	if secret == "" || id == "" {
		path := c.credentials
		if path == "" {
			path = filepath.Join(cfg.Store.DataDir, adminCredentialsFile)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("no administrator credential: set CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET, use --credentials FILE, or point --data-dir (CREDGATE_DATA_DIR) at the server's data dir (%w)", err)
		}
		var saved struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal(b, &saved); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if id == "" {
			id = saved.ClientID
		}
		if secret == "" {
			secret = saved.ClientSecret
		}
	}
	if id == "" || secret == "" {
		return nil, errors.New("the administrator credential lacks a client id or secret")
	}
	return &adminClient{base: strings.TrimRight(cfg.Client.URL, "/"), http: &http.Client{Timeout: 30 * time.Second}, id: id, secret: secret}, nil
}

// apiError is a problem+json answer.
type apiError struct {
	Status int
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Title  string `json:"title"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Title != "" {
		msg += ": " + e.Title
	}
	return msg
}

// do sends a request and decodes a 2xx JSON answer into out (raw bytes
// returned too).
func (a *adminClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	if a.token == "" {
		if err := a.login(ctx); err != nil {
			return nil, err
		}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(req)
}

func (a *adminClient) send(req *http.Request) ([]byte, error) {
	res, err := a.http.Do(req)
	if err != nil {
		return nil, unreachable(a.base, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		e := &apiError{Status: res.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Code == "" {
			e.Code = http.StatusText(res.StatusCode)
		}
		return nil, e
	}
	return raw, nil
}

// login gets an administrator token (client credentials, HTTP Basic).
func (a *adminClient) login(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/v1/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.id, a.secret)
	raw, err := a.send(req)
	if err != nil {
		return fmt.Errorf("administrator login: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" {
		return errors.New("administrator login: no access token in the answer")
	}
	a.token = tok.AccessToken
	return nil
}

// partnerOut is the part of a partner the command line prints.
type partnerOut struct {
	ClientID                string   `json:"client_id"`
	Name                    string   `json:"name"`
	Role                    string   `json:"role"`
	Actions                 []string `json:"actions"`
	SubjectKinds            []string `json:"subject_kinds"`
	Visibility              string   `json:"visibility"`
	RateLimit               string   `json:"rate_limit"`
	Region                  string   `json:"region"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Status                  string   `json:"status"`
	CreatedAt               string   `json:"created_at"`
	RevokedAt               string   `json:"revoked_at"`
	ClientSecret            string   `json:"client_secret"`
	Credentials             []struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		ExpiresAt string `json:"expires_at"`
	} `json:"credentials"`
}

func printPartner(w io.Writer, p partnerOut) {
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
		if c.ExpiresAt != "" {
			exp = "expires " + c.ExpiresAt
		}
		fmt.Fprintf(tw, "credential\t%s (%s, %s)\n", c.ID, c.Kind, exp)
	}
	fmt.Fprintf(tw, "created_at\t%s\n", p.CreatedAt)
	if p.RevokedAt != "" {
		fmt.Fprintf(tw, "revoked_at\t%s\n", p.RevokedAt)
	}
	if p.ClientSecret != "" {
		fmt.Fprintf(tw, "client_secret\t%s\n", p.ClientSecret)
	}
	tw.Flush()
}

// readJWKS reads a JWK Set file (or a single JWK) for --jwks and checks
// it with the rules the server applies (access.ParseJWKS), so that a bad
// key is named before anything is sent.
func readJWKS(path string) (any, error) {
	b, err := os.ReadFile(path)
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
	return set, nil
}

// partnersCmd is "credgate partners".
func partnersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, partnersUsage)
		return errUsage
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("partners "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, partnersUsage) }
	var cf clientFlags
	cf.register(fs)
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
	client, err := cf.client()
	if err != nil {
		return err
	}
	var raw []byte
	switch verb {
	case "create":
		body := map[string]any{"name": name, "role": role}
		if len(actions) > 0 {
			body["actions"] = actions
		}
		if len(kinds) > 0 {
			body["subject_kinds"] = kinds
		}
		if visibility != "" {
			body["visibility"] = visibility
		}
		if rateLimit != "" {
			body["rate_limit"] = rateLimit
		}
		if region != "" {
			body["region"] = region
		}
		if jwksPath != "" {
			set, err := readJWKS(jwksPath)
			if err != nil {
				return err
			}
			body["jwks"] = set
		}
		raw, err = client.do(ctx, http.MethodPost, "/v1/admin/partners", body)
	case "update":
		body := map[string]any{}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "name":
				body["name"] = name
			case "action":
				body["actions"] = actions
			case "subject-kinds":
				body["subject_kinds"] = kinds
			case "visibility":
				body["visibility"] = visibility
			case "rate-limit":
				body["rate_limit"] = rateLimit
			case "region":
				body["region"] = region
			}
		})
		raw, err = client.do(ctx, http.MethodPatch, "/v1/admin/partners/"+url.PathEscape(rest[0]), body)
	case "rotate":
		if overlap < 0 {
			return errors.New("--overlap must not be negative")
		}
		body := map[string]any{"overlap_seconds": int64(overlap / time.Second)}
		if jwksPath != "" {
			set, err := readJWKS(jwksPath)
			if err != nil {
				return err
			}
			body["jwks"] = set
		}
		raw, err = client.do(ctx, http.MethodPost, "/v1/admin/partners/"+url.PathEscape(rest[0])+":rotate", body)
	case "revoke":
		raw, err = client.do(ctx, http.MethodPost, "/v1/admin/partners/"+url.PathEscape(rest[0])+":revoke", nil)
	case "show":
		raw, err = client.do(ctx, http.MethodGet, "/v1/admin/partners/"+url.PathEscape(rest[0]), nil)
	case "list":
		return listPartners(ctx, client, limit, cf.json, stdout)
	}
	if err != nil {
		return err
	}
	var p partnerOut
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	if p.ClientSecret != "" {
		fmt.Fprintln(stderr, "The client secret is shown this once: hand it over securely now; credgate keeps only its hash.")
	}
	if cf.json {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	printPartner(stdout, p)
	return nil
}

// listPartners prints every partner (following the pages), or at most
// limit of them.
func listPartners(ctx context.Context, client *adminClient, limit int, asJSON bool, stdout io.Writer) error {
	var all []json.RawMessage
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		raw, err := client.do(ctx, http.MethodGet, "/v1/admin/partners?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		var page struct {
			Partners []json.RawMessage `json:"partners"`
			Next     string            `json:"next"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
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
		b, _ := json.Marshal(map[string]any{"partners": all})
		_, err := stdout.Write(append(b, '\n'))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tROLE\tSTATUS\tAUTH\tACTIONS\tNAME")
	for _, r := range all {
		var p partnerOut
		if err := json.Unmarshal(r, &p); err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ClientID, p.Role, p.Status, p.TokenEndpointAuthMethod, strings.Join(p.Actions, ","), p.Name)
	}
	return tw.Flush()
}
