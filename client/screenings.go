package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Screening is a screening job as the API shows it.
type Screening struct {
	ID        string           `json:"id"`
	Action    string           `json:"action"`
	State     string           `json:"state"`
	Total     int64            `json:"total"`
	Done      int64            `json:"done"`
	Counts    map[string]int64 `json:"counts"`
	TreeSize  *uint64          `json:"tree_size,omitempty"`
	Root      string           `json:"root,omitempty"`
	RecordID  string           `json:"record_id,omitempty"`
	Error     string           `json:"error,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

// Finished reports whether the job is done or failed.
func (s Screening) Finished() bool { return s.State == "done" || s.State == "failed" }

// SubmitScreening streams file (contentType text/csv or
// application/x-ndjson) to POST /v1/screenings for action; the file is
// read as it is sent, never held whole. size is its length (-1: unknown,
// sent chunked). The client's per-request timeout does not apply: a file
// of millions takes as long as the link needs; ctx bounds it. A refused
// file is an *Error (screening_rejected with its Lines, …).
func (c *Client) SubmitScreening(ctx context.Context, action, contentType string, file io.Reader, size int64) (Screening, error) {
	raw, err := c.postStream(ctx, "/v1/screenings?action="+url.QueryEscape(action), contentType, file, size)
	if err != nil {
		return Screening{}, err
	}
	var s Screening
	if err := json.Unmarshal(raw, &s); err != nil || s.ID == "" {
		return Screening{}, fmt.Errorf("%w: POST /v1/screenings: no job in the answer", ErrResponse)
	}
	return s, nil
}

// GetScreening reads a job's state and counts.
func (c *Client) GetScreening(ctx context.Context, id string) (Screening, error) {
	var s Screening
	err := c.Do(ctx, http.MethodGet, "/v1/screenings/"+url.PathEscape(id), nil, "", &s)
	return s, err
}

// ScreeningResults streams a done job's results (format "ndjson" or
// "csv") into w, as they arrive; it returns the bytes written. Like
// SubmitScreening it is bounded by ctx alone. Before the job is done the
// error is an *Error with code screening_not_done.
func (c *Client) ScreeningResults(ctx context.Context, id, format string, w io.Writer) (int64, error) {
	path := "/v1/screenings/" + url.PathEscape(id) + "/results?format=" + url.QueryEscape(format)
	for attempt := 0; ; attempt++ {
		tok, err := c.Token(ctx)
		if err != nil {
			return 0, err
		}
		req, err := newRequest(ctx, http.MethodGet, c.base+path, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if c.userAgent != "" {
			req.Header.Set("User-Agent", c.userAgent)
		}
		res, err := c.http.Do(req)
		if err != nil {
			return 0, requestFailed(req, err)
		}
		if res.StatusCode/100 != 2 {
			raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
			err := decodeError(res, raw)
			if res.StatusCode == http.StatusUnauthorized && attempt == 0 {
				c.forget(tok)
				continue
			}
			return 0, err
		}
		n, err := io.Copy(w, res.Body)
		res.Body.Close()
		if err != nil {
			return n, requestFailed(req, err)
		}
		return n, nil
	}
}
