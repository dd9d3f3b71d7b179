package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Credit commitments (信用承诺): a promise recorded with a check or a
// repair or exit proceeding, later fulfilled or breached. Answers are kept
// verbatim in Raw besides the fields the command line prints.

// Commitment is a commitment with its state.
type Commitment struct {
	ID           string          `json:"id"`
	Partner      string          `json:"partner"`
	Subject      string          `json:"subject_id"`
	Kind         string          `json:"kind"`
	Promise      string          `json:"promise"`
	Due          string          `json:"due"`
	CheckID      string          `json:"check_id,omitempty"`
	ProceedingID string          `json:"proceeding_id,omitempty"`
	State        string          `json:"state"`
	Overdue      bool            `json:"overdue"`
	RecordedAt   time.Time       `json:"recorded_at"`
	Raw          json.RawMessage `json:"-"`
}

// CommitmentSpec records a commitment (POST /v1/commitments): Due is a
// date, YYYY-MM-DD.
type CommitmentSpec struct {
	Subject      string `json:"subject_id"`
	Kind         string `json:"kind"`
	Promise      string `json:"promise"`
	Due          string `json:"due"`
	CheckID      string `json:"check_id,omitempty"`
	ProceedingID string `json:"proceeding_id,omitempty"`
}

// CommitmentQuery selects commitments; zero fields select all the caller
// may read (a partner its own).
type CommitmentQuery struct {
	Partner, Subject, State, After string
	Limit                          int
}

// CommitmentPage is one page of commitments; Next is "" on the last.
type CommitmentPage struct {
	Commitments []Commitment `json:"commitments"`
	Next        string       `json:"next"`
}

// RecordCommitment records a commitment.
func (c *Client) RecordCommitment(ctx context.Context, s CommitmentSpec) (Commitment, error) {
	var out Commitment
	err := c.jsonCall(ctx, http.MethodPost, "/v1/commitments", s, &out, &out.Raw)
	return out, err
}

// Commitments reads one page of commitments.
func (c *Client) Commitments(ctx context.Context, q CommitmentQuery) (CommitmentPage, error) {
	v := url.Values{}
	for k, val := range map[string]string{"partner": q.Partner, "subject_id": q.Subject, "state": q.State, "after": q.After} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out CommitmentPage
	err := c.jsonCall(ctx, http.MethodGet, "/v1/commitments"+query(v), nil, &out, nil)
	return out, err
}

// Commitment reads one commitment.
func (c *Client) Commitment(ctx context.Context, id string) (Commitment, error) {
	var out Commitment
	err := c.jsonCall(ctx, http.MethodGet, "/v1/commitments/"+url.PathEscape(id), nil, &out, &out.Raw)
	return out, err
}

// ChangeCommitment fulfils (op "fulfil") or breaches (op "breach") a
// commitment; change is the request body ({"note": …, "violation": …}),
// nil for none.
func (c *Client) ChangeCommitment(ctx context.Context, id, op string, change json.RawMessage) (Commitment, error) {
	var out json.RawMessage
	if err := c.Do(ctx, http.MethodPost, "/v1/commitments/"+url.PathEscape(id)+"/"+url.PathEscape(op), change, "", &out); err != nil {
		return Commitment{}, err
	}
	cm := Commitment{Raw: out}
	err := json.Unmarshal(out, &cm)
	return cm, err
}
