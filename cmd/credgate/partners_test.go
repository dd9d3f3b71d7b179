package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPartners(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"partners"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func tokenStatus(t *testing.T, base, id, secret string) int {
	t.Helper()
	res, err := http.PostForm(base+"/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestPartnersCommand(t *testing.T) {
	const adminID, adminSecret = "admin", "admin-secret-for-cli-tests-0123456789"
	ts := apiServer(t, adminID, adminSecret)
	// The credential comes from the file serve writes, and never from argv.
	dir := t.TempDir()
	creds := filepath.Join(dir, "admin-credentials.json")
	if err := os.WriteFile(creds, []byte(`{"client_id":"admin","client_secret":"`+adminSecret+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDGATE_ADMIN_CLIENT_ID", "")
	t.Setenv("CREDGATE_ADMIN_CLIENT_SECRET", "")
	common := []string{"--url", ts.URL, "--credentials", creds}

	code, out, errOut := runPartners(t, append([]string{"create", "--name", "某市行政审批局", "--action", "administrative_licensing",
		"--action", "production_license", "--subject-kinds", "organization", "--rate-limit", "600-M", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v: %s", err, out)
	}
	id, secret := created["client_id"].(string), created["client_secret"].(string)
	if created["rate_limit"] != "600-M" || len(created["actions"].([]any)) != 2 || !strings.Contains(errOut, "shown this once") {
		t.Fatalf("created %v\n%s", created, errOut)
	}
	if tokenStatus(t, ts.URL, id, secret) != http.StatusOK {
		t.Fatal("the new partner cannot get a token")
	}

	// show and list print the partner, never a secret.
	code, out, _ = runPartners(t, append([]string{"show", id}, common...)...)
	if code != 0 || !strings.Contains(out, "某市行政审批局") || !strings.Contains(out, "600-M") || strings.Contains(out, secret) {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	code, out, _ = runPartners(t, append([]string{"list"}, common...)...)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "admin") || strings.Contains(out, secret) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}

	// update changes scope.
	code, out, errOut = runPartners(t, append([]string{"update", id, "--visibility", "full"}, common...)...)
	if code != 0 || !strings.Contains(out, "full") {
		t.Fatalf("update: exit %d\n%s%s", code, out, errOut)
	}

	// rotate without overlap: the old secret stops, the new one works.
	code, out, errOut = runPartners(t, append([]string{"rotate", id, "--overlap", "0s", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	var rotated map[string]any
	_ = json.Unmarshal([]byte(out), &rotated)
	newSecret, _ := rotated["client_secret"].(string)
	if newSecret == "" || tokenStatus(t, ts.URL, id, secret) != http.StatusUnauthorized || tokenStatus(t, ts.URL, id, newSecret) != http.StatusOK {
		t.Fatalf("rotation did not replace the secret: %s", out)
	}

	// A key partner from a JWK Set file gets no secret.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	jwks := filepath.Join(dir, "bank.jwks.json")
	_ = os.WriteFile(jwks, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"`+base64.RawURLEncoding.EncodeToString(pub)+`"}]}`), 0o644)
	code, out, errOut = runPartners(t, append([]string{"create", "--name", "某银行", "--action", "bank_credit", "--jwks", jwks}, common...)...)
	if code != 0 || !strings.Contains(out, "private_key_jwt") || strings.Contains(out, "client_secret") {
		t.Fatalf("create with --jwks: exit %d\n%s%s", code, out, errOut)
	}

	// revoke.
	code, out, _ = runPartners(t, append([]string{"revoke", id}, common...)...)
	if code != 0 || !strings.Contains(out, "revoked") || tokenStatus(t, ts.URL, id, newSecret) != http.StatusUnauthorized {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}

	// Refusals: the API's problem code, exit 1; misuse, exit 2.
	code, _, errOut = runPartners(t, append([]string{"create", "--name", "x", "--action", "teleport"}, common...)...)
	if code != 1 || !strings.Contains(errOut, "400 invalid_partner") {
		t.Fatalf("bad action: exit %d: %s", code, errOut)
	}
	code, _, errOut = runPartners(t, append([]string{"show", "ghost"}, common...)...)
	if code != 1 || !strings.Contains(errOut, "404 not_found") {
		t.Fatalf("unknown partner: exit %d: %s", code, errOut)
	}
	if code, _, _ = runPartners(t, append([]string{"show"}, common...)...); code != 2 {
		t.Fatalf("show without id: exit %d", code)
	}
	if code, _, _ = runPartners(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"client_id":"admin","client_secret":"wrong-secret-0123456789"}`), 0o600)
	code, _, errOut = runPartners(t, "list", "--url", ts.URL, "--credentials", bad)
	if code != 1 || !strings.Contains(errOut, "401 invalid_client") || strings.Contains(errOut, "wrong-secret") {
		t.Fatalf("wrong admin secret: exit %d: %s", code, errOut)
	}
}

// TestPartnersCommandRegion registers a partner's jurisdiction with
// --region and changes it with update.
func TestPartnersCommandRegion(t *testing.T) {
	const adminID, adminSecret = "admin", "admin-secret-for-cli-tests-0123456789"
	ts := apiServer(t, adminID, adminSecret)
	t.Setenv("CREDGATE_ADMIN_CLIENT_ID", adminID)
	t.Setenv("CREDGATE_ADMIN_CLIENT_SECRET", adminSecret)
	common := []string{"--url", ts.URL}

	code, out, errOut := runPartners(t, append([]string{"create", "--name", "深圳市行政审批局", "--action", "administrative_licensing",
		"--region", "440300", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	if created["region"] != "440300" {
		t.Fatalf("created without its region: %s", out)
	}
	id := created["client_id"].(string)

	// A malformed region is refused with its own code.
	code, _, errOut = runPartners(t, append([]string{"create", "--name", "x", "--action", "bank_credit", "--region", "4403"}, common...)...)
	if code == 0 || !strings.Contains(errOut, "invalid_region") {
		t.Fatalf("bad region accepted: exit %d\n%s", code, errOut)
	}

	code, out, errOut = runPartners(t, append([]string{"update", id, "--region", "440304"}, common...)...)
	if code != 0 || !strings.Contains(out, "440304") {
		t.Fatalf("update --region: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runPartners(t, append([]string{"show", id}, common...)...)
	if code != 0 {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "440304") {
		// The update answers the changed partner; show reads it back from
		// the store, whose adapter must persist the region.
		t.Fatalf("partners show lost the region: %s", out)
	}
}

// --jwks files are checked with the server's rules before anything is
// sent: a bad key is named by its place in the set.
func TestReadJWKS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	okp := `{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, body := range map[string]string{"set": `{"keys":[` + okp + `]}`, "one key": okp + "\n"} {
		if _, err := readJWKS(write(name, body)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, body := range map[string]string{
		"symmetric second": `{"keys":[` + okp + `,{"kty":"oct","k":"c2VjcmV0"}]}`,
		"private":          `{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `","d":"c2VjcmV0"}`,
		"neither":          `[1,2]`,
	} {
		if _, err := readJWKS(write(name, body)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "symmetric second" && !strings.Contains(err.Error(), "keys[1]") {
			t.Errorf("%s: %v does not name the key", name, err)
		}
	}
}
