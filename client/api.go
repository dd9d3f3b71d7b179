package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
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
}

// CheckReceipt is the evidence receipt summary of an answer.
type CheckReceipt struct {
	LogIndex   uint64 `json:"log_index"`
	RecordHash string `json:"record_hash"`
	LeafHash   string `json:"leaf_hash"`
}

// CheckAnswer is credgate's answer to a check. The fields an integration
// acts on are typed; Raw is the whole answer, as recorded in evidence.
type CheckAnswer struct {
	CheckID   string          `json:"check_id"`
	Partner   string          `json:"partner"`
	Action    string          `json:"action"`
	Reference string          `json:"reference"`
	Outcome   string          `json:"outcome"`
	Measures  json.RawMessage `json:"measures"`
	Entries   json.RawMessage `json:"entries"`
	DataAsOf  time.Time       `json:"data_as_of"`
	CheckedAt time.Time       `json:"checked_at"`
	Receipt   CheckReceipt    `json:"receipt"`
	Raw       json.RawMessage `json:"-"`
}

// Check asks what must be done about a subject for a business action, now
// (or at ValidAt), and gets the answer once it is durably recorded.
func (c *Client) Check(ctx context.Context, r CheckRequest) (CheckAnswer, error) {
	var out CheckAnswer
	err := c.jsonCall(ctx, http.MethodPost, "/v1/checks", r, &out, &out.Raw)
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
