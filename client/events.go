package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Push: the event feed, watchlists and webhook verification.
//
// A webhook request from credgate carries three headers (Standard
// Webhooks, asymmetric): webhook-id (the event id, the same at every
// retry: deduplicate by it), webhook-timestamp (Unix seconds) and
// webhook-signature, "v1a," and the base64 Ed25519 signature of
// "<webhook-id>.<webhook-timestamp>.<body>". The public keys are at
// /.well-known/credgate-webhook-keys.json; fetch them with WebhookKeys,
// pin them, and check every request with VerifyWebhook:
//
//	keys, err := c.WebhookKeys(ctx)
//	…
//	http.HandleFunc("/credgate/events", func(w http.ResponseWriter, r *http.Request) {
//		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//		ev, err := client.VerifyWebhook(keys, r.Header, body, time.Now(), 5*time.Minute)
//		if err != nil {
//			http.Error(w, "bad signature", http.StatusUnauthorized)
//			return
//		}
//		if seen(ev.ID) { w.WriteHeader(http.StatusNoContent); return } // a retry
//		apply(ev)                                                        // then answer 2xx
//	})

// ErrWebhookSignature: a webhook request whose signature does not verify
// with any of the keys, or whose timestamp is outside the tolerance.
var ErrWebhookSignature = errors.New("webhook signature does not verify")

// WebhookKeysPath is where credgate publishes its webhook keys.
const WebhookKeysPath = "/.well-known/credgate-webhook-keys.json"

// EventMeasure is a measure newly in or out of force.
type EventMeasure struct {
	ID         string `json:"id"`
	List       string `json:"list"`
	Effect     string `json:"effect"`
	Status     string `json:"status"`
	Text       string `json:"text"`
	LegalBasis string `json:"legal_basis"`
	Authority  string `json:"authority"`
	EntryID    string `json:"entry_id,omitempty"`
}

// EventChange is what a change did to one of the partner's actions.
type EventChange struct {
	Action        string         `json:"action"`
	OutcomeBefore string         `json:"outcome_before"`
	Outcome       string         `json:"outcome"`
	InForce       []EventMeasure `json:"measures_in_force"`
	OutOfForce    []EventMeasure `json:"measures_out_of_force"`
}

// Event is one change of a subject the partner follows.
type Event struct {
	ID           string    `json:"id"`
	Cursor       string    `json:"cursor"`
	Kind         string    `json:"kind"`
	Subject      Subject   `json:"subject"`
	EntryID      string    `json:"entry_id"`
	EntryVersion int64     `json:"entry_version"`
	List         string    `json:"list"`
	EntryStatus  string    `json:"entry_status"`
	OccurredAt   time.Time `json:"occurred_at"`
	Subscription []string  `json:"subscription"`
	// Authorities are, in a department's event, the measure authorities
	// it follows whose measures the change brought into or out of force.
	Authorities []string      `json:"authorities,omitempty"`
	Changes     []EventChange `json:"changes"`
}

// EventPage is a page of the feed; pass Next as after to continue.
type EventPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next"`
}

// Events reads the partner's events after the cursor ("" from the oldest
// kept), waiting up to wait (at most 30 s) for one when there is none.
func (c *Client) Events(ctx context.Context, after string, limit int, wait time.Duration) (EventPage, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(int(wait/time.Second)))
	}
	var p EventPage
	err := c.Do(ctx, http.MethodGet, "/v1/events"+query(q), nil, "", &p)
	return p, err
}

// WatchlistResult is what one watchlist part changed.
type WatchlistResult struct {
	Op       string `json:"op"`
	Received int    `json:"received"`
	Changed  int64  `json:"changed"`
	Size     int64  `json:"size"`
}

// UpdateWatchlist adds (op "add") or removes (op "remove") the subjects of
// part, one per line, at most 100000; all or, on any bad line, none (an
// *Error with code watchlist_rejected whose Lines say which).
func (c *Client) UpdateWatchlist(ctx context.Context, op string, part []byte) (WatchlistResult, error) {
	var r WatchlistResult
	err := c.Do(ctx, http.MethodPost, "/v1/watchlist?op="+url.QueryEscape(op), part, "text/plain", &r)
	return r, err
}

// WatchlistSize is how many subjects the partner watches.
func (c *Client) WatchlistSize(ctx context.Context) (int64, error) {
	var r struct {
		Size int64 `json:"size"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/watchlist", nil, "", &r)
	return r.Size, err
}

// WebhookKeys fetches the public keys webhook requests are signed with.
func (c *Client) WebhookKeys(ctx context.Context) ([]ed25519.PublicKey, error) {
	var raw json.RawMessage
	if err := c.DoPublic(ctx, http.MethodGet, WebhookKeysPath, &raw); err != nil {
		return nil, err
	}
	return ParseWebhookKeys(raw)
}

// ParseWebhookKeys reads the Ed25519 keys of a JWK set.
func ParseWebhookKeys(jwks []byte) ([]ed25519.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("%w: webhook keys: %w", ErrResponse, err)
	}
	var out []ed25519.PublicKey
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: webhook key is not an Ed25519 public key", ErrResponse)
		}
		out = append(out, ed25519.PublicKey(x))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no Ed25519 webhook key", ErrResponse)
	}
	return out, nil
}

// VerifyWebhook checks a webhook request's signature with keys and that
// its timestamp is within tolerance of now (against replays of old
// requests), and returns the event.
func VerifyWebhook(keys []ed25519.PublicKey, h http.Header, body []byte, now time.Time, tolerance time.Duration) (Event, error) {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return Event{}, fmt.Errorf("%w: missing webhook-id or webhook-timestamp", ErrWebhookSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return Event{}, fmt.Errorf("%w: timestamp %s is outside the tolerance", ErrWebhookSignature, ts)
	}
	msg := []byte(id + "." + ts + "." + string(body))
	ok := false
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		b64, found := strings.CutPrefix(s, "v1a,")
		if !found {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if ed25519.Verify(k, msg, sig) {
				ok = true
			}
		}
	}
	if !ok {
		return Event{}, ErrWebhookSignature
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: event: %w", ErrResponse, err)
	}
	if ev.ID != id {
		return Event{}, fmt.Errorf("%w: the body's id is not webhook-id", ErrWebhookSignature)
	}
	return ev, nil
}
