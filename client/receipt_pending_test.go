package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestReceiptPending: the receipt of a record that waits in a replica's
// spool is refused 404 receipt_pending with Retry-After, which the client
// tells apart from not_found (no such record) and whose wait it reports.
func TestReceiptPending(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem := func(code string) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:credgate:problem:" + code, "title": code, "status": 404, "code": code})
		}
		switch r.URL.Path {
		case "/v1/oauth/token":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 900})
		case "/v1/evidence/receipts/spooled":
			w.Header().Set("Retry-After", "1")
			problem(CodeReceiptPending)
		default:
			problem("not_found")
		}
	}))
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, WithClientSecret("bank", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Receipt(context.Background(), "spooled")
	var e *Error
	if !IsReceiptPending(err) || !errors.As(err, &e) || e.Status != http.StatusNotFound || e.RetryAfter != time.Second {
		t.Fatalf("a pending receipt: %v (%+v)", err, e)
	}
	_, err = c.Receipt(context.Background(), "unknown")
	if err == nil || IsReceiptPending(err) || !IsCode(err, "not_found") {
		t.Fatalf("no such record: %v", err)
	}
}
