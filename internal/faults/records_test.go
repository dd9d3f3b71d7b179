package faults

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/internal/testenv"
)

// logDB is a server on a PostgreSQL database of its own, with a
// connection to tamper with it as someone with the owner's rights could.
func logDB(t *testing.T) (*server, *api, *pgx.Conn) {
	t.Helper()
	pgURL := testenv.FreshDatabase(t, "credgate_faults_records")
	srv := startServer(t, "CREDGATE_POSTGRES_URL="+pgURL)
	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return srv, newAPI(srv.base), conn
}

func sqlExec(t *testing.T, conn *pgx.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Finding 5: GET /v1/checks/{id} served a tampered record (body changed
// in the database, or two rows swapped) with a 200, and an erased record
// (a documented operation) gave 500. Now: 500 evidence_corrupt serving
// nothing of the record, and 410 record_erased with its receipt.
func TestTamperedRecordNotServed(t *testing.T) {
	t.Parallel()
	_, a, conn := logDB(t)
	tok := a.partner(t, a.adminToken(t), nil, action)
	var ids []string
	var subjects []string
	for i := range 4 {
		subjects = append(subjects, subject(t, 7, i))
		ids = append(ids, a.mustCheck(t, tok, subjects[i]))
	}
	index := func(id string) int64 {
		var i int64
		if err := conn.QueryRow(t.Context(), `SELECT idx FROM evidence WHERE id = $1`, id).Scan(&i); err != nil {
			t.Fatal(err)
		}
		return i
	}
	corrupt := func(what string, k int) {
		t.Helper()
		r := a.get("/v1/checks/"+ids[k], tok)
		wantProblem(t, what, r, http.StatusInternalServerError, "evidence_corrupt")
		if strings.Contains(string(r.raw), subjects[k]) || strings.Contains(string(r.raw), "outcome") {
			t.Errorf("%s: the record was served: %s", what, r)
		}
	}

	// A byte of a body: the answer's text changed (past the append-only
	// trigger, which lets a body only be erased).
	sqlExec(t, conn, `ALTER TABLE evidence DISABLE TRIGGER evidence_no_rewrite`)
	sqlExec(t, conn, `UPDATE evidence SET body = body || '\x20'::bytea WHERE id = $1`, ids[0])
	corrupt("changed body", 0)
	// Two rows swap places: each body matches its own hash, but neither is
	// the record the tree holds at its new index.
	i, j := index(ids[1]), index(ids[2])
	sqlExec(t, conn, `UPDATE evidence SET idx = 1000000000 WHERE idx = $1`, i)
	sqlExec(t, conn, `UPDATE evidence SET idx = $1 WHERE idx = $2`, i, j)
	sqlExec(t, conn, `UPDATE evidence SET idx = $1 WHERE idx = 1000000000`, j)
	sqlExec(t, conn, `ALTER TABLE evidence ENABLE TRIGGER evidence_no_rewrite`)
	corrupt("swapped rows", 1)
	corrupt("swapped rows", 2)
	// Erased, the documented way: body and salt deleted.
	sqlExec(t, conn, `UPDATE evidence SET body = ''::bytea, salt = ''::bytea WHERE id = $1`, ids[3])
	r := a.get("/v1/checks/"+ids[3], tok)
	wantProblem(t, "erased record", r, http.StatusGone, "record_erased")
	if rc, _ := r.body["receipt"].(map[string]any); rc == nil || strings.Contains(string(r.raw), subjects[3]) {
		t.Errorf("erased record: want its receipt and nothing of its body: %s", r)
	}
}

// Finding 6: `credgate audit --full` missed a changed interior tree node
// (receipts then failed, audit said OK), and a forged checkpoint row
// beyond the tree's size broke every receipt for good. Now the full audit
// reports the node, and the database refuses the forged row (migration
// 0008) while receipts keep verifying.
func TestAuditFindsNodeAndForgedCheckpointRefused(t *testing.T) {
	t.Parallel()
	srv, a, conn := logDB(t)
	admin := a.adminToken(t)
	tok := a.partner(t, admin, nil, action)
	var ids []string
	for i := range 4 {
		ids = append(ids, a.mustCheck(t, tok, subject(t, 8, i)))
	}
	vkeys := a.verifiers(t)
	for _, id := range ids {
		eventually(t, "receipt "+id, 10*time.Second, func() error { return a.verifyReceipt(tok, id, vkeys) })
	}

	// An auditor, and its files.
	dir := t.TempDir()
	r := a.postJSON("/v1/admin/partners", admin, map[string]any{"name": "审计署", "role": "auditor"})
	if r.status != http.StatusCreated {
		t.Fatalf("create auditor: %s", r)
	}
	creds, _ := json.Marshal(map[string]any{"client_id": r.body["client_id"], "client_secret": r.body["client_secret"]})
	files := map[string][]byte{"auditor.json": creds, "log.vkey": []byte(strings.Join(vkeys, "\n") + "\n")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	audit := func() (int, string) {
		cmd := exec.Command(srv.bin, "audit", "--key", filepath.Join(dir, "log.vkey"), "--url", srv.base,
			"--state", filepath.Join(dir, "state.json"), "--full", "--credentials", filepath.Join(dir, "auditor.json"))
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := audit(); code != 0 {
		t.Fatalf("audit of an untouched log: exit %d\n%s", code, out)
	}

	// A forged checkpoint row beyond the tree's size, and one for the
	// tree's size with another root: the database refuses both.
	var size int64
	if err := conn.QueryRow(t.Context(), `SELECT size FROM evidence_tree_head WHERE id = 1`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	forger := testenv.Signer(t, origin)
	for _, n := range []int64{size + 1000, size} {
		sc, err := forger.Sign(uint64(n), [32]byte{9})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), `INSERT INTO evidence_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, now())`,
			n, sc.Root[:], sc.Note); err == nil {
			t.Errorf("a forged checkpoint row of %d records (the tree has %d) was stored", n, size)
		}
	}
	ids = append(ids, a.mustCheck(t, tok, subject(t, 8, 10)))
	for _, id := range ids {
		eventually(t, "receipt "+id+" after the forgeries", 10*time.Second, func() error { return a.verifyReceipt(tok, id, vkeys) })
	}

	// An interior node of the stored tree changed: receipts through it
	// break, and the full audit says where.
	sqlExec(t, conn, `ALTER TABLE evidence_nodes DISABLE TRIGGER evidence_nodes_no_rewrite`)
	sqlExec(t, conn, `UPDATE evidence_nodes SET hash = '\x`+strings.Repeat("00", 32)+`'::bytea WHERE level = 1 AND idx = 0`)
	sqlExec(t, conn, `ALTER TABLE evidence_nodes ENABLE TRIGGER evidence_nodes_no_rewrite`)
	code, out := audit()
	if code == 0 || !strings.Contains(out, "ALTERED: tree node 1/0") {
		t.Errorf("audit --full after a node was changed: exit %d, want the node reported\n%s", code, out)
	}
}
