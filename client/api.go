package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/evidence"
)

// Subject is whom a check is about: an 18-character Unified Social Credit
// Code or resident ID number.
type Subject struct {
	ID string `json:"id"`
}

// CheckContext is what the measures' scopes are matched against.
type CheckContext struct {
	Region       string `json:"region,omitempty"`
	Industry     string `json:"industry,omitempty"`
	SubjectType  string `json:"subject_type,omitempty"`
	EmployerType string `json:"employer_type,omitempty"`
}

// CheckRequest is POST /v1/checks.
type CheckRequest struct {
	Subject   Subject       `json:"subject"`
	Action    string        `json:"action"`
	Reference string        `json:"reference,omitempty"`
	AsOf      *time.Time    `json:"as_of,omitempty"`
	ValidAt   *time.Time    `json:"valid_at,omitempty"`
	Context   *CheckContext `json:"context,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header
	// (1–255 printable ASCII, e.g. a UUID per check meant): a retry with
	// the same key and request within 24 hours gets the answer recorded
	// the first time (CheckAnswer.Replayed) instead of recording another
	// check. Retry a check whose answer was lost with the same key.
	IdempotencyKey string `json:"-"`
}

// Outcome is what a check concludes (openapi.yaml, Outcome). Compare it
// with the constants below rather than with "clear" alone: an
// unverifiable answer comes with a nil error and says nothing either way.
type Outcome string

// The outcomes, strongest effect first.
const (
	OutcomeProhibit     Outcome = "prohibit"
	OutcomeRestrict     Outcome = "restrict"
	OutcomeStrictReview Outcome = "strict_review"
	OutcomeReference    Outcome = "reference"
	OutcomeIncentive    Outcome = "incentive"
	OutcomeClear        Outcome = "clear"
	// OutcomeUnverifiable: the list data the answer rests on is older than
	// its bound (CheckAnswer.Unverifiable says why). It is not a clearance:
	// the measures found are listed, but no outcome is given.
	OutcomeUnverifiable Outcome = "unverifiable"
)

// ReceiptSpooled is CheckReceipt.State for a record the log could not
// commit in time, which the replica spooled.
const ReceiptSpooled = "spooled"

// CheckReceipt is the evidence receipt summary of an answer. A record in
// the log has its LogIndex and LeafHash; a spooled one (State
// ReceiptSpooled) has neither yet, only the replica's signed Promise
// (verify it with evidence.VerifyPromise): its full receipt (Receipt)
// answers 404 receipt_pending (IsReceiptPending) until the replica has
// integrated its spool.
type CheckReceipt struct {
	State string `json:"state,omitempty"`
	// Promise is set for a spooled record only.
	Promise *evidence.Promise `json:"promise,omitempty"`
	// LogIndex is nil for a spooled record: 0 is a position like any other.
	LogIndex   *uint64 `json:"log_index,omitempty"`
	RecordHash string  `json:"record_hash"`
	LeafHash   string  `json:"leaf_hash,omitempty"`
}

// Spooled reports whether the record awaits integration into the log.
func (r CheckReceipt) Spooled() bool { return r.State == ReceiptSpooled }

// SubjectView is the subject as answered: normalised, with its kind
// (organization or person).
type SubjectView struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// Unverifiable says why an answer's outcome is OutcomeUnverifiable: reason
// data_stale, source_stale or source_never_synced; Source names the
// upstream source at fault for the source_* reasons.
type Unverifiable struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	Source string `json:"source,omitempty"`
}

// CheckAnswer is credgate's answer to a check. The fields an integration
// acts on are typed; Raw is the whole answer, as recorded in evidence.
type CheckAnswer struct {
	CheckID         string          `json:"check_id"`
	Partner         string          `json:"partner"`
	Subject         SubjectView     `json:"subject"`
	Action          string          `json:"action"`
	Reference       string          `json:"reference"`
	Outcome         Outcome         `json:"outcome"`
	Measures        json.RawMessage `json:"measures"`
	Entries         json.RawMessage `json:"entries"`
	CatalogRevision string          `json:"catalog_revision"`
	DataAsOf        time.Time       `json:"data_as_of"`
	CheckedAt       time.Time       `json:"checked_at"`
	// AsOf is set for a check re-run as of a past time, ValidAt for one
	// about the standing at a past time.
	AsOf    *time.Time `json:"as_of"`
	ValidAt *time.Time `json:"valid_at"`
	// Context is the effective context the measures' scopes were matched
	// against (openapi.yaml's ContextView has CheckContext's members).
	Context *CheckContext `json:"context"`
	// Unverifiable is set exactly when Outcome is OutcomeUnverifiable.
	Unverifiable *Unverifiable `json:"unverifiable"`
	Receipt      CheckReceipt  `json:"receipt"`
	// IdempotencyKey is the key the check was sent with, if any.
	IdempotencyKey string `json:"idempotency_key"`
	// Replayed: the answer is that of the check first recorded under
	// the request's IdempotencyKey (Idempotent-Replayed: true); nothing
	// new was recorded.
	Replayed bool            `json:"-"`
	Raw      json.RawMessage `json:"-"`
}

// Check asks what must be done about a subject for a business action, now
// (or at ValidAt), and gets the answer once it is durably recorded.
func (c *Client) Check(ctx context.Context, r CheckRequest) (CheckAnswer, error) {
	var out CheckAnswer
	if r.IdempotencyKey == "" {
		err := c.jsonCall(ctx, http.MethodPost, "/v1/checks", r, &out, &out.Raw)
		return out, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return out, err
	}
	var got http.Header
	x := &exchange{hdr: http.Header{"Idempotency-Key": {sfString(r.IdempotencyKey)}}, got: &got}
	if err := c.call(ctx, http.MethodPost, "/v1/checks", body, "", &out.Raw, true, x); err != nil {
		return out, err
	}
	if err := json.Unmarshal(out.Raw, &out); err != nil {
		return out, fmt.Errorf("%w: POST /v1/checks: %w", ErrResponse, err)
	}
	out.Replayed = got.Get("Idempotent-Replayed") == "true"
	return out, nil
}

// sfString is key as the Idempotency-Key draft writes it, an RFC 8941
// String: quoted, with backslash and quote escaped.
func sfString(key string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
}

// BatchRequest is POST /v1/checks:batch: up to 1000 subjects, one
// action; Reference, ValidAt and Context apply to every check.
type BatchRequest struct {
	Subjects  []Subject     `json:"subjects"`
	Action    string        `json:"action"`
	Reference string        `json:"reference,omitempty"`
	ValidAt   *time.Time    `json:"valid_at,omitempty"`
	Context   *CheckContext `json:"context,omitempty"`
}

// BatchResult is one subject's result: exactly one of Check (recorded,
// with its own receipt) and Problem (a refusal of that subject alone,
// e.g. invalid_subject_id with Field subjects[i].id).
type BatchResult struct {
	// Index is the subject's position in the request.
	Index   int          `json:"index"`
	Check   *CheckAnswer `json:"check"`
	Problem *Error       `json:"problem"`
}

// BatchAnswer is the answer to a batch: one result per subject, in
// request order. Raw is the whole answer, verbatim.
type BatchAnswer struct {
	Action  string          `json:"action"`
	Results []BatchResult   `json:"results"`
	Raw     json.RawMessage `json:"-"`
}

// CheckBatch checks every subject of r for one action. An error is the
// whole batch's (its action, the caller's entitlement, the rate limit,
// recording); a subject refused alone is its result's Problem. Each
// Check's Raw is that result's answer, verbatim.
func (c *Client) CheckBatch(ctx context.Context, r BatchRequest) (BatchAnswer, error) {
	var raw struct {
		Action  string `json:"action"`
		Results []struct {
			Index   int             `json:"index"`
			Check   json.RawMessage `json:"check"`
			Problem *Error          `json:"problem"`
		} `json:"results"`
	}
	var out BatchAnswer
	if err := c.jsonCall(ctx, http.MethodPost, "/v1/checks:batch", r, &raw, &out.Raw); err != nil {
		return BatchAnswer{}, err
	}
	out.Action = raw.Action
	out.Results = make([]BatchResult, len(raw.Results))
	for i, res := range raw.Results {
		out.Results[i] = BatchResult{Index: res.Index, Problem: res.Problem}
		if len(res.Check) > 0 && string(res.Check) != "null" {
			a := &CheckAnswer{}
			if err := json.Unmarshal(res.Check, a); err != nil {
				return BatchAnswer{}, fmt.Errorf("%w: POST /v1/checks:batch: result %d: %w", ErrResponse, i, err)
			}
			a.Raw = res.Check
			out.Results[i].Check = a
		}
		if (out.Results[i].Check == nil) == (res.Problem == nil) {
			return BatchAnswer{}, fmt.Errorf("%w: POST /v1/checks:batch: result %d has not exactly one of check and problem", ErrResponse, i)
		}
	}
	return out, nil
}

// CatalogAction is a business action a check can name.
type CatalogAction struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CatalogRegion is a GB/T 2260 region measures are scoped to.
type CatalogRegion struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// ScopeTerm is one term of a scope vocabulary (industries, subject types,
// employer types).
type ScopeTerm struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
}

// Catalog is GET /v1/catalog, the measure catalogue the server applies.
// What a partner system needs to build a check is typed (the revision, to
// cache by, the actions and the context vocabularies); the rules are kept
// verbatim, and Raw is the whole answer.
type Catalog struct {
	Revision       string          `json:"revision"`
	Actions        []CatalogAction `json:"actions"`
	Lists          json.RawMessage `json:"lists"`
	Measures       json.RawMessage `json:"measures"`
	Calendar       json.RawMessage `json:"calendar"`
	RuleSets       json.RawMessage `json:"rule_sets"`
	ViolationItems json.RawMessage `json:"violation_items"`
	Regions        []CatalogRegion `json:"regions"`
	Industries     []ScopeTerm     `json:"industries"`
	SubjectTypes   []ScopeTerm     `json:"subject_types"`
	EmployerTypes  []ScopeTerm     `json:"employer_types"`
	Raw            json.RawMessage `json:"-"`
}

// Catalog reads the catalogue (any authenticated role). Action ids are
// data: read them here, cached by Revision (every answer's
// CatalogRevision), rather than hard-code them.
func (c *Client) Catalog(ctx context.Context) (Catalog, error) {
	var out Catalog
	err := c.jsonCall(ctx, http.MethodGet, "/v1/catalog", nil, &out, &out.Raw)
	return out, err
}

// jsonCall marshals in, sends it, decodes the answer into out and keeps it
// verbatim in raw.
func (c *Client) jsonCall(ctx context.Context, method, path string, in, out any, raw *json.RawMessage) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	var b json.RawMessage
	if err := c.Do(ctx, method, path, body, "", &b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrResponse, method, path, err)
	}
	if raw != nil {
		*raw = b
	}
	return nil
}

// PartnerSpec registers a partner (POST /v1/admin/partners).
type PartnerSpec struct {
	Name         string   `json:"name"`
	Role         string   `json:"role,omitempty"`
	Actions      []string `json:"actions,omitempty"`
	SubjectKinds []string `json:"subject_kinds,omitempty"`
	Visibility   string   `json:"visibility,omitempty"`
	RateLimit    string   `json:"rate_limit,omitempty"`
	Region       string   `json:"region,omitempty"`
	// JWKS, when set, registers public keys: the partner authenticates
	// with private_key_jwt and gets no secret.
	JWKS json.RawMessage `json:"jwks,omitempty"`
}

// PartnerPatch changes a partner (PATCH): nil fields are left as they are.
type PartnerPatch struct {
	Name         *string   `json:"name,omitempty"`
	Actions      *[]string `json:"actions,omitempty"`
	SubjectKinds *[]string `json:"subject_kinds,omitempty"`
	Visibility   *string   `json:"visibility,omitempty"`
	RateLimit    *string   `json:"rate_limit,omitempty"`
	Region       *string   `json:"region,omitempty"`
}

// PartnerCredential is one of a partner's credentials (never a secret).
type PartnerCredential struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Partner is a partner system as the API shows it. ClientSecret is set
// only in the answer that created or rotated it: hand it over, never log
// it.
type Partner struct {
	ClientID                string              `json:"client_id"`
	Name                    string              `json:"name"`
	Role                    string              `json:"role"`
	Actions                 []string            `json:"actions"`
	SubjectKinds            []string            `json:"subject_kinds"`
	Visibility              string              `json:"visibility"`
	RateLimit               string              `json:"rate_limit"`
	Region                  string              `json:"region"`
	TokenEndpointAuthMethod string              `json:"token_endpoint_auth_method"`
	Status                  string              `json:"status"`
	CreatedAt               time.Time           `json:"created_at"`
	RevokedAt               *time.Time          `json:"revoked_at"`
	ClientSecret            string              `json:"client_secret"`
	Credentials             []PartnerCredential `json:"credentials"`
	Raw                     json.RawMessage     `json:"-"`
}

// CreatePartner registers a partner (administrators).
func (c *Client) CreatePartner(ctx context.Context, s PartnerSpec) (Partner, error) {
	var p Partner
	err := c.jsonCall(ctx, http.MethodPost, "/v1/admin/partners", s, &p, &p.Raw)
	return p, err
}

// UpdatePartner changes a partner's name or scope (administrators).
func (c *Client) UpdatePartner(ctx context.Context, clientID string, patch PartnerPatch) (Partner, error) {
	var p Partner
	err := c.jsonCall(ctx, http.MethodPatch, "/v1/admin/partners/"+url.PathEscape(clientID), patch, &p, &p.Raw)
	return p, err
}

// Partner reads one partner (administrators, auditors).
func (c *Client) Partner(ctx context.Context, clientID string) (Partner, error) {
	var p Partner
	err := c.jsonCall(ctx, http.MethodGet, "/v1/admin/partners/"+url.PathEscape(clientID), nil, &p, &p.Raw)
	return p, err
}

// RotateSpec replaces a partner's credentials.
type RotateSpec struct {
	// Overlap is how long the current credentials keep working (0: stop
	// now); whole seconds.
	Overlap time.Duration
	// JWKS, when set, replaces the credentials with these public keys.
	JWKS json.RawMessage
}

// RotatePartner issues new credentials (administrators).
func (c *Client) RotatePartner(ctx context.Context, clientID string, r RotateSpec) (Partner, error) {
	body := struct {
		OverlapSeconds int64           `json:"overlap_seconds"`
		JWKS           json.RawMessage `json:"jwks,omitempty"`
	}{int64(r.Overlap / time.Second), r.JWKS}
	var p Partner
	err := c.jsonCall(ctx, http.MethodPost, "/v1/admin/partners/"+url.PathEscape(clientID)+":rotate", body, &p, &p.Raw)
	return p, err
}

// RevokePartner stops a partner's credentials and tokens (administrators).
func (c *Client) RevokePartner(ctx context.Context, clientID string) (Partner, error) {
	var p Partner
	err := c.jsonCall(ctx, http.MethodPost, "/v1/admin/partners/"+url.PathEscape(clientID)+":revoke", nil, &p, &p.Raw)
	return p, err
}

// PartnerPage is one page of partners; Next is the cursor of the next page
// ("" on the last).
type PartnerPage struct {
	Partners []Partner `json:"partners"`
	Next     string    `json:"next"`
}

// ListPartners reads one page of at most limit partners after the cursor.
func (c *Client) ListPartners(ctx context.Context, limit int, after string) (PartnerPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if after != "" {
		q.Set("after", after)
	}
	var raw struct {
		Partners []json.RawMessage `json:"partners"`
		Next     string            `json:"next"`
	}
	if err := c.jsonCall(ctx, http.MethodGet, "/v1/admin/partners"+query(q), nil, &raw, nil); err != nil {
		return PartnerPage{}, err
	}
	page := PartnerPage{Next: raw.Next, Partners: make([]Partner, len(raw.Partners))}
	for i, r := range raw.Partners {
		if err := json.Unmarshal(r, &page.Partners[i]); err != nil {
			return PartnerPage{}, fmt.Errorf("%w: partner %d: %w", ErrResponse, i, err)
		}
		page.Partners[i].Raw = r
	}
	return page, nil
}

func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Entry is a list entry as the admin API lists it (the fields an importer
// needs; Raw holds the rest).
type Entry struct {
	ID        string          `json:"id"`
	SubjectID string          `json:"subject_id"`
	List      string          `json:"list"`
	Status    string          `json:"status"`
	Raw       json.RawMessage `json:"-"`
}

// EntryQuery selects entries (GET /v1/admin/entries).
type EntryQuery struct {
	List    string
	Subject string
	Limit   int
	After   string
}

// EntryPage is one page of entries.
type EntryPage struct {
	Entries []Entry `json:"entries"`
	Next    string  `json:"next"`
}

// ListEntries reads one page of entries (administrators).
func (c *Client) ListEntries(ctx context.Context, q EntryQuery) (EntryPage, error) {
	v := url.Values{}
	if q.List != "" {
		v.Set("list", q.List)
	}
	if q.Subject != "" {
		v.Set("subject_id", q.Subject)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	var raw struct {
		Entries []json.RawMessage `json:"entries"`
		Next    string            `json:"next"`
	}
	if err := c.jsonCall(ctx, http.MethodGet, "/v1/admin/entries"+query(v), nil, &raw, nil); err != nil {
		return EntryPage{}, err
	}
	page := EntryPage{Next: raw.Next, Entries: make([]Entry, len(raw.Entries))}
	for i, r := range raw.Entries {
		if err := json.Unmarshal(r, &page.Entries[i]); err != nil {
			return EntryPage{}, fmt.Errorf("%w: entry %d: %w", ErrResponse, i, err)
		}
		page.Entries[i].Raw = r
	}
	return page, nil
}

// ImportResult is the answer to an import.
type ImportResult struct {
	Imported int             `json:"imported"`
	Raw      json.RawMessage `json:"-"`
}

// ImportEntries imports a CSV (text/csv) or NDJSON (application/x-ndjson)
// file of entries, all or nothing (administrators). A rejected file is an
// *Error with code import_rejected whose Lines say what is wrong.
func (c *Client) ImportEntries(ctx context.Context, contentType string, file []byte) (ImportResult, error) {
	var raw json.RawMessage
	if err := c.Do(ctx, http.MethodPost, "/v1/admin/entries:import", file, contentType, &raw); err != nil {
		return ImportResult{}, err
	}
	var r ImportResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return ImportResult{}, fmt.Errorf("%w: import: %w", ErrResponse, err)
	}
	r.Raw = raw
	return r, nil
}
