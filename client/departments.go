package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Departments' subscriptions by measure authority (administrators set
// them, auditors read them): the partner registered for a department is
// told, by its webhook and GET /v1/events, of every change that brings a
// measure of these authorities into or out of force.

// AuthoritySubscription is a partner's subscription by authority.
type AuthoritySubscription struct {
	Partner     string          `json:"partner"`
	Authorities []string        `json:"authorities"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Raw         json.RawMessage `json:"-"`
}

// Authorities reads the partner's subscription by authority.
func (c *Client) Authorities(ctx context.Context, clientID string) (AuthoritySubscription, error) {
	var s AuthoritySubscription
	err := c.jsonCall(ctx, http.MethodGet, "/v1/admin/partners/"+url.PathEscape(clientID)+"/authorities", nil, &s, &s.Raw)
	return s, err
}

// SetAuthorities replaces the partner's authorities, each spelled as the
// catalogue spells a measure's authority; none ends the subscription.
func (c *Client) SetAuthorities(ctx context.Context, clientID string, authorities []string) (AuthoritySubscription, error) {
	if authorities == nil {
		authorities = []string{}
	}
	var s AuthoritySubscription
	err := c.jsonCall(ctx, http.MethodPut, "/v1/admin/partners/"+url.PathEscape(clientID)+"/authorities",
		map[string][]string{"authorities": authorities}, &s, &s.Raw)
	return s, err
}
