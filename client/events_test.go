package client_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/credgate/credgate/client"
)

// sign signs as credgate does (Standard Webhooks, v1a).
func sign(key ed25519.PrivateKey, id string, ts int64, body []byte) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(id+"."+strconv.FormatInt(ts, 10)+"."+string(body)))))
	return h
}

func TestVerifyWebhook(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	jwks := []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `","kid":"k"}]}`)
	keys, err := client.ParseWebhookKeys(jwks)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"cursor":"7","id":"evt_1","kind":"listed","subject":{"id":"91350100M000100Y43","kind":"organization"}}`)
	ev, err := client.VerifyWebhook(keys, sign(key, "evt_1", now.Unix(), body), body, now, 5*time.Minute)
	if err != nil || ev.ID != "evt_1" || ev.Cursor != "7" || ev.Subject.ID != "91350100M000100Y43" {
		t.Fatalf("VerifyWebhook = %+v, %v", ev, err)
	}
	for name, tc := range map[string]struct {
		keys []ed25519.PublicKey
		h    http.Header
		body []byte
	}{
		"other key":    {[]ed25519.PublicKey{other}, sign(key, "evt_1", now.Unix(), body), body},
		"altered body": {keys, sign(key, "evt_1", now.Unix(), body), append([]byte(nil), append(body[:len(body)-1:len(body)-1], ' ', '}')...)},
		"old request":  {keys, sign(key, "evt_1", now.Add(-time.Hour).Unix(), body), body},
		"other id":     {keys, sign(key, "evt_2", now.Unix(), body), body},
		"no headers":   {keys, http.Header{}, body},
	} {
		if _, err := client.VerifyWebhook(tc.keys, tc.h, tc.body, now, 5*time.Minute); !errors.Is(err, client.ErrWebhookSignature) {
			t.Errorf("%s: %v, want ErrWebhookSignature", name, err)
		}
	}
	if _, err := client.ParseWebhookKeys([]byte(`{"keys":[]}`)); err == nil {
		t.Error("an empty key set parsed")
	}
}
