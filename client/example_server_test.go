package client_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
)

// exampleServer is an in-process stand-in for credgate, so that the
// examples run: it issues tokens, answers every check "clear" and records
// each answer as the one record of a signed one-leaf log, whose receipt it
// serves. It returns the server and the log's verifier key, which a real
// integration pins from GET /v1/evidence/keys.
func exampleServer() (*httptest.Server, string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "credgate.example/log")
	if err != nil {
		panic(err)
	}
	signer, err := evidence.NewSigner("credgate.example/log", skey)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	receipts := map[string][]byte{}
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "example-token", "token_type": "Bearer", "expires_in": 900})
	})
	mux.HandleFunc("POST /v1/checks", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Subject struct {
				ID string `json:"id"`
			} `json:"subject"`
			Action string `json:"action"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		at := time.Now().UTC().Truncate(time.Microsecond)
		id := "01a21d8c-093d-7457-b696-fd5f540357ab"
		answer := map[string]any{"check_id": id, "partner": "cg_example",
			"subject": map[string]any{"id": strings.ToUpper(req.Subject.ID), "kind": "organization"},
			"action":  req.Action, "outcome": "clear", "measures": []any{}, "entries": []any{},
			"catalog_revision": "cat-bcb591f317d49f73", "data_as_of": at, "checked_at": at}
		body, _ := json.Marshal(answer)
		rec := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "cg_example", At: at, Body: body}
		if err := rec.Seal(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		leaf := evidence.LeafHash(rec)
		cp, err := signer.Sign(1, leaf) // a one-leaf tree's root is its leaf
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		receipt := evidence.NewReceipt(rec, nil, cp)
		raw, _ := json.Marshal(receipt)
		mu.Lock()
		receipts[id] = raw
		mu.Unlock()
		answer["receipt"] = map[string]any{"log_index": 0, "record_hash": receipt.RecordHash, "leaf_hash": receipt.LeafHash}
		writeJSON(w, http.StatusOK, answer)
	})
	mux.HandleFunc("GET /v1/evidence/receipts/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		raw, ok := receipts[r.PathValue("id")]
		mu.Unlock()
		if !ok {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"type":"urn:credgate:problem:not_found","title":"Not found","status":404,"code":"not_found"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	})
	return httptest.NewServer(mux), vkey
}
