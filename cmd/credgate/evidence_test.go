package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

const testOrigin = "credgate.test/evidence"

// inproc is `credgate serve` running in this test process (serve is the
// real wiring), stopped at cleanup.
type inproc struct {
	base, dataDir       string
	adminID, adminToken string
	logs                *testenv.SyncBuffer
}

var listening = regexp.MustCompile(`listening on (http://[^\s]+)`)

func startInProcess(t *testing.T, args ...string) *inproc {
	t.Helper()
	dataDir := t.TempDir()
	base, logs, stop := serveInProcess(t, dataDir, args...)
	t.Cleanup(stop)
	p := &inproc{base: base, dataDir: dataDir, logs: logs}
	p.adminID, p.adminToken = adminToken(t, base, dataDir)
	return p
}

// adminToken logs in with the administrator credential serve generated
// into dataDir on its first start.
func adminToken(t *testing.T, base, dataDir string) (id, token string) {
	t.Helper()
	var cred struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	b, err := os.ReadFile(filepath.Join(dataDir, adminCredentialsFile))
	if err != nil || json.Unmarshal(b, &cred) != nil {
		t.Fatalf("admin credentials: %v", err)
	}
	return cred.ClientID, testenv.Token(t, base, cred.ClientID, cred.ClientSecret)
}

func getJSON(t *testing.T, base, path, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return res.StatusCode
}

// verifierKey is the log's current key, as an auditor fetches it.
func verifierKey(t *testing.T, base string) string {
	t.Helper()
	var doc struct {
		Keys []struct {
			Key     string `json:"key"`
			Current bool   `json:"current"`
		} `json:"keys"`
	}
	if code := getJSON(t, base, "/v1/evidence/keys", "", &doc); code != http.StatusOK {
		t.Fatalf("keys: %d", code)
	}
	for _, k := range doc.Keys {
		if k.Current {
			return k.Key
		}
	}
	t.Fatal("no current key")
	return ""
}

// runCLI runs a credgate subcommand in process and returns its exit
// status and output.
func runCLI(args ...string) (int, string) {
	var out bytes.Buffer
	code := run(context.Background(), args, &out, &out)
	return code, out.String()
}

// saveReceipt fetches a receipt and writes it to a file for `verify`.
func saveReceipt(t *testing.T, base, token, id, dir string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/evidence/receipts/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	path := filepath.Join(dir, id+".json")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path, res.StatusCode
}

// auditorCredentials registers an auditor through the service, as the
// partner-access work builds its lifecycle, and writes its credential file.
func auditorCredentials(t *testing.T, pgURL, dir string) string {
	t.Helper()
	st, err := postgres.Open(t.Context(), pgURL, postgres.WithMaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	partners := service.NewPartners(st, cat, service.WithSecretCost(testenv.SecretCost()))
	p, secret, err := partners.Create(t.Context(), service.NewPartnerInput{Name: "审计署", Role: service.RoleAuditor})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "auditor.json")
	b, _ := json.Marshal(map[string]string{"client_id": p.ClientID, "client_secret": secret})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func createPartner(t *testing.T, base, adminToken string, actions ...string) string {
	t.Helper()
	code, m, err := postJSON(http.DefaultClient, base+"/v1/admin/partners", adminToken, map[string]any{"name": "某市公共资源交易中心", "actions": actions})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create partner: %d %v %v", code, m, err)
	}
	return testenv.Token(t, base, m["client_id"].(string), m["client_secret"].(string))
}

func mustCheck(t *testing.T, base, token, subject string) map[string]any {
	t.Helper()
	code, m, err := postJSON(http.DefaultClient, base+"/v1/checks", token, map[string]any{
		"subject": map[string]string{"id": subject}, "action": "government_procurement"})
	if err != nil || code != http.StatusOK {
		t.Fatalf("check: %d %v %v", code, m, err)
	}
	return m
}

func pgExec(t *testing.T, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, q := range sqls {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestVerifyAndAuditDetectTampering runs the real server on PostgreSQL,
// then tampers with its database as an insider would, one way at a time:
// every tampering is caught by `credgate verify` or `credgate audit` with
// a precise message, and untouched receipts keep verifying.
func TestVerifyAndAuditDetectTampering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server on PostgreSQL")
	}
	t.Parallel()
	pgURL := testenv.FreshDatabase(t, "credgate_crash")
	// No periodic checkpoints: the test decides when the log is signed.
	srv := startInProcess(t, "--postgres-url", pgURL, "--checkpoint-interval", "1h")
	dir := t.TempDir()
	partner := createPartner(t, srv.base, srv.adminToken, "government_procurement")
	vkey := verifierKey(t, srv.base)
	creds := auditorCredentials(t, pgURL, dir)
	state := filepath.Join(dir, "audit-state.json")
	subject := testenv.USCC(t, "91110108MA01TAMP0")

	var ids []string
	var files []string
	indexOf := map[string]int{}
	for range 8 {
		m := mustCheck(t, srv.base, partner, subject)
		id := m["check_id"].(string)
		ids = append(ids, id)
		index, err := receiptIndex(m)
		if err != nil {
			t.Fatal(err)
		}
		indexOf[id] = int(index)
	}
	for _, id := range ids {
		f, code := saveReceipt(t, srv.base, partner, id, dir)
		if code != http.StatusOK {
			t.Fatalf("receipt %s: %d", id, code)
		}
		files = append(files, f)
	}
	if code, out := runCLI(append([]string{"verify", "--key", vkey}, files...)...); code != 0 || strings.Count(out, ": OK: ") != len(files) {
		t.Fatalf("verify of untouched receipts: exit %d\n%s", code, out)
	}
	if code, out := runCLI("verify", "--key", vkey, "--origin", "elsewhere", files[0]); code != 1 || !strings.Contains(out, `not "elsewhere"`) {
		t.Fatalf("verify with another origin: exit %d\n%s", code, out)
	}
	audit := func(full bool) (int, string) {
		args := []string{"audit", "--key", vkey, "--url", srv.base, "--state", state}
		if full {
			args = append(args, "--full", "--credentials", creds)
		}
		return runCLI(args...)
	}
	if code, out := audit(true); code != 0 || !strings.Contains(out, "OK: checkpoint of") {
		t.Fatalf("first audit: exit %d\n%s", code, out)
	}
	// The log grows; the next audit builds its consistency proof from the
	// tlog-tiles that PostgreSQL's stored nodes serve.
	for range 3 {
		id := mustCheck(t, srv.base, partner, subject)["check_id"].(string)
		if _, code := saveReceipt(t, srv.base, partner, id, filepath.Join(dir, "more")); code != http.StatusOK {
			t.Fatalf("receipt %s: %d", id, code)
		}
	}
	if code, out := runCLI("audit", "--key", vkey, "--url", srv.base, "--state", state, "--tiles"); code != 0 ||
		!strings.Contains(out, "consistent: the log of") || !strings.Contains(out, "OK: checkpoint of") {
		t.Fatalf("audit --tiles: exit %d\n%s", code, out)
	}
	savedState, _ := os.ReadFile(state)

	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	expectAudit := func(what string, full bool, wants ...string) {
		t.Helper()
		code, out := audit(full)
		if code != 1 {
			t.Fatalf("%s: audit exit %d, want 1\n%s", what, code, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: audit does not say %q:\n%s", what, w, out)
			}
		}
		// A failed audit leaves the state as it was.
		if now, _ := os.ReadFile(state); !bytes.Equal(now, savedState) {
			t.Fatalf("%s: a failed audit changed the state file", what)
		}
	}
	expectVerify := func(what, file string, wants ...string) {
		t.Helper()
		code, out := runCLI("verify", "--key", vkey, file)
		if code != 1 {
			t.Fatalf("%s: verify exit %d, want 1\n%s", what, code, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: verify does not say %q:\n%s", what, w, out)
			}
		}
	}

	// 1. One byte of a stored body changes (the append-only trigger, which
	// lets a body only be erased, switched off by someone with the
	// database's owner rights).
	pgExec(t, conn, `ALTER TABLE evidence DISABLE TRIGGER evidence_no_rewrite`,
		fmt.Sprintf(`UPDATE evidence SET body = overlay(body placing '\x58'::bytea from 12 for 1) WHERE id = '%s'`, ids[1]),
		`ALTER TABLE evidence ENABLE TRIGGER evidence_no_rewrite`)
	f, code := saveReceipt(t, srv.base, partner, ids[1], filepath.Join(dir, "after"))
	if code != http.StatusOK {
		t.Fatalf("receipt after tampering: %d", code)
	}
	expectVerify("changed byte", f, "record hash mismatch", "the body or salt was altered")
	expectAudit("changed byte", true, fmt.Sprintf("ALTERED: record %d (%s): its body no longer matches its record hash", indexOf[ids[1]], ids[1]))

	// 2. A record is deleted (the append-only trigger switched off by
	// someone with the database's owner rights).
	pgExec(t, conn, `ALTER TABLE evidence DISABLE TRIGGER evidence_no_rewrite`,
		fmt.Sprintf(`DELETE FROM evidence WHERE id = '%s'`, ids[3]))
	if _, code := saveReceipt(t, srv.base, partner, ids[3], dir); code != http.StatusNotFound {
		t.Fatalf("receipt of a deleted record: %d", code)
	}
	expectAudit("deleted record", true, fmt.Sprintf("DELETED: record %d is missing from the log", indexOf[ids[3]]))
	// The receipt taken before the deletion still proves the record was
	// there.
	if code, out := runCLI("verify", "--key", vkey, files[3]); code != 0 {
		t.Fatalf("the receipt of the deleted record no longer verifies offline: %s", out)
	}

	// 3. Two records are swapped.
	i, j := indexOf[ids[5]], indexOf[ids[6]]
	pgExec(t, conn,
		fmt.Sprintf(`UPDATE evidence SET idx = 1000000000 WHERE idx = %d`, i),
		fmt.Sprintf(`UPDATE evidence SET idx = %d WHERE idx = %d`, i, j),
		fmt.Sprintf(`UPDATE evidence SET idx = %d WHERE idx = 1000000000`, j),
		`ALTER TABLE evidence ENABLE TRIGGER evidence_no_rewrite`)
	f, code = saveReceipt(t, srv.base, partner, ids[5], filepath.Join(dir, "after"))
	if code != http.StatusOK {
		t.Fatalf("receipt after reordering: %d", code)
	}
	expectVerify("reordered", f, "inclusion proof does not verify", fmt.Sprintf("is not record %d of the signed tree", j))
	expectAudit("reordered", true, fmt.Sprintf("REORDERED: the record signed at index %d is stored at index %d", i, j),
		fmt.Sprintf("REORDERED: the record signed at index %d is stored at index %d", j, i))

	// 3b. One interior node of the stored tree changes: the root rebuilt
	// from the leaves still matches the checkpoint, but inclusion proofs
	// read that node, so receipts through it fail; --full compares every
	// stored node with the hash of its leaves.
	pgExec(t, conn, `ALTER TABLE evidence_nodes DISABLE TRIGGER evidence_nodes_no_rewrite`,
		`UPDATE evidence_nodes SET hash = '\x`+strings.Repeat("00", 32)+`'::bytea WHERE level = 1 AND idx = 0`,
		`ALTER TABLE evidence_nodes ENABLE TRIGGER evidence_nodes_no_rewrite`)
	expectAudit("interior node", true, "ALTERED: tree node 1/0 (level/index) is stored as 0000")

	// 4. The checkpoint is replaced.
	var latest int64
	if err := conn.QueryRow(t.Context(), `SELECT max(size) FROM evidence_checkpoints`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	var st auditState
	_ = json.Unmarshal(savedState, &st)
	replaceLatest := func(note []byte, size uint64) {
		t.Helper()
		// An insider lifts the triggers that keep rows append-only and
		// within the tree (migration 0008: the tree's root at its size).
		pgExec(t, conn, `ALTER TABLE evidence_checkpoints DISABLE TRIGGER evidence_checkpoints_no_rewrite`,
			`ALTER TABLE evidence_checkpoints DISABLE TRIGGER evidence_checkpoints_within_tree`,
			fmt.Sprintf(`DELETE FROM evidence_checkpoints WHERE size >= %d`, size))
		// The row agrees with its note, as a forger's would.
		c, err := evidence.ParseCheckpoint(note)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), `INSERT INTO evidence_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, now())`,
			int64(size), c.Root[:], note); err != nil {
			t.Fatal(err)
		}
	}
	// 4a. by one signed with a key the log does not hold: the server
	// never serves it, but one it signs itself;
	forged, _ := testenv.Signer(t, testOrigin).Sign(uint64(latest), [32]byte{9})
	replaceLatest(forged.Note, uint64(latest))
	var served struct {
		Checkpoint string `json:"checkpoint"`
	}
	if code := getJSON(t, srv.base, "/v1/evidence/checkpoint", "", &served); code != http.StatusOK {
		t.Fatalf("checkpoint after a foreign row: %d", code)
	}
	vs, err := evidence.Verifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.OpenCheckpoint([]byte(served.Checkpoint), vs, testOrigin); err != nil {
		t.Fatalf("the foreign checkpoint row was served: %v", err)
	}
	// 4b. by an insider holding the real key, who signs a rewritten tree:
	// it does not extend what the auditor saw;
	realKey, err := os.ReadFile(filepath.Join(srv.dataDir, evidenceKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	insider, err := evidence.NewSigner(testOrigin, string(realKey))
	if err != nil {
		t.Fatal(err)
	}
	rewritten, _ := insider.Sign(uint64(latest), [32]byte{7})
	replaceLatest(rewritten.Note, uint64(latest))
	if uint64(latest) > st.Size {
		expectAudit("rewritten tree", false, fmt.Sprintf("REWRITE: the log of %d records seen at the last audit is not a prefix of the log of %d records", st.Size, latest))
	}
	// 4c. same size as the audited one, another root;
	sameSize, _ := insider.Sign(st.Size, [32]byte{7})
	replaceLatest(sameSize.Note, st.Size)
	expectAudit("same size, other root", false, fmt.Sprintf("REWRITE: the log still has %d records but its root changed", st.Size))
	// 4d. a smaller log: records were cut off the end.
	shorter, _ := insider.Sign(st.Size-2, [32]byte{7})
	replaceLatest(shorter.Note, st.Size-2)
	expectAudit("truncated", false, fmt.Sprintf("TRUNCATION: the log had %d records at the last audit", st.Size),
		fmt.Sprintf("now claims %d: records were removed", st.Size-2))

	// A receipt whose checkpoint note was edited no longer verifies.
	raw, _ := os.ReadFile(files[0])
	var r evidence.Receipt
	_ = json.Unmarshal(raw, &r)
	r.Checkpoint = strings.Replace(r.Checkpoint, fmt.Sprintf("\n%d\n", r.TreeSize), fmt.Sprintf("\n%d\n", r.TreeSize+1), 1)
	edited, _ := json.Marshal(r)
	ef := filepath.Join(dir, "edited.json")
	_ = os.WriteFile(ef, edited, 0o600)
	expectVerify("edited checkpoint", ef, "checkpoint signature does not verify", "altered or forged")
}

// TestEvidenceOutageFailsClosed runs the real server on PostgreSQL as a
// role that loses, then regains, the right to write evidence (as a full
// disk or a failed-over primary would): while it cannot write, checks are
// refused with 503 evidence_unavailable and nothing is answered; after,
// checks are answered again and every answered one verifies. Then the
// database refuses connections altogether, and recovers.
func TestEvidenceOutageFailsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server on PostgreSQL")
	}
	t.Parallel()
	pgURL := testenv.FreshDatabase(t, "credgate_crash")
	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var dbName string
	_ = conn.QueryRow(t.Context(), `SELECT current_database()`).Scan(&dbName)
	role := "cg_" + strings.TrimPrefix(dbName, "credgate_crash_")
	pgExec(t, conn, fmt.Sprintf(`CREATE ROLE %s LOGIN`, role),
		fmt.Sprintf(`GRANT ALL ON DATABASE %s TO %s`, dbName, role),
		fmt.Sprintf(`GRANT ALL ON SCHEMA public TO %s`, role))
	// Runs before testenv.FreshDatabase's cleanup: the database must go before its
	// role can.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, strings.Replace(pgURL, "/"+dbName, "/test", 1)); err == nil {
			_, _ = c.Exec(ctx, `DROP DATABASE IF EXISTS `+dbName+` WITH (FORCE)`)
			_, _ = c.Exec(ctx, `DROP ROLE IF EXISTS `+role)
			c.Close(ctx)
		}
	})
	u, _ := url.Parse(pgURL)
	u.User = url.User(role)
	// Without the spool: this is the fail-closed behaviour (spool_fault_test.go has the spool's).
	srv := startInProcess(t, "--postgres-url", u.String(), "--checkpoint-interval", "100ms", "--spool=false")
	partner := createPartner(t, srv.base, srv.adminToken, "government_procurement")
	subject := testenv.USCC(t, "91110108MA01DWN00")
	var answered []string
	check := func() (int, map[string]any) {
		code, m, err := postJSON(http.DefaultClient, srv.base+"/v1/checks", partner, map[string]any{
			"subject": map[string]string{"id": subject}, "action": "government_procurement"})
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusOK {
			answered = append(answered, m["check_id"].(string))
		}
		return code, m
	}
	for range 3 {
		if code, m := check(); code != http.StatusOK {
			t.Fatalf("check before the outage: %d %v", code, m)
		}
	}
	count := func() int {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM evidence`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Writes refused.
	before := count()
	pgExec(t, conn, fmt.Sprintf(`REVOKE INSERT ON evidence FROM %s`, role))
	for range 3 {
		code, m := check()
		if code != http.StatusServiceUnavailable || m["code"] != "evidence_unavailable" {
			t.Fatalf("check while evidence cannot be written: %d %v", code, m)
		}
		if _, answeredAnyway := m["outcome"]; answeredAnyway {
			t.Fatalf("an outcome left without evidence: %v", m)
		}
	}
	if n := count(); n != before {
		t.Fatalf("evidence grew from %d to %d during the outage", before, n)
	}
	pgExec(t, conn, fmt.Sprintf(`GRANT INSERT ON evidence TO %s`, role))
	if code, m := check(); code != http.StatusOK {
		t.Fatalf("check after writes returned: %d %v", code, m)
	}

	// The database refuses connections altogether.
	admin2, err := pgx.Connect(t.Context(), strings.Replace(pgURL, "/"+dbName, "/test", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin2.Close(context.Background())
	pgExec(t, admin2, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS false`, dbName))
	pgExec(t, admin2, fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND usename = '%s'`, dbName, role))
	for range 3 {
		// The lookup of the lists fails first now (data_unavailable, owned
		// by the check path); what matters here is that nothing is
		// answered.
		code, m := check()
		if code < 500 || m["code"] == nil || m["outcome"] != nil {
			t.Fatalf("check with the database down: %d %v\n%s", code, m, srv.logs.String())
		}
	}
	pgExec(t, admin2, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS true`, dbName))
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := check()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check answered 15s after the database returned:\n%s", srv.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every answered check is in the log and verifies.
	vkey := verifierKey(t, srv.base)
	dir := t.TempDir()
	var files []string
	for _, id := range answered {
		f, code := saveReceipt(t, srv.base, partner, id, dir)
		if code != http.StatusOK {
			t.Fatalf("receipt of answered check %s: %d", id, code)
		}
		files = append(files, f)
	}
	if code, out := runCLI(append([]string{"verify", "--key", vkey}, files...)...); code != 0 {
		t.Fatalf("answered checks do not verify after the outage:\n%s", out)
	}
	t.Logf("%d checks answered around two outages; all verify", len(answered))
}
