package gateway_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// tamperer changes the evidence rows behind the store's back, as someone
// with the database's owner rights could. Queries use $n parameters.
type tamperer struct {
	exec func(t *testing.T, q string, args ...any)
	// try runs a statement the database may refuse.
	try func(t *testing.T, q string, args ...any) error
	// unlock lifts the append-only trigger so rows can be moved.
	unlock string
	// unlockCheckpoints lifts the trigger (migration 0008) that refuses a
	// checkpoint row the tree does not have, as the database's owner could.
	unlockCheckpoints string
	// now is a created_at value of the dialect.
	now any
}

// TestRecordReadVerified reads past checks back after their rows were
// tampered with in the real database: a changed body or two swapped rows
// answer 500 evidence_corrupt with nothing of the record, never 200; an
// erased body answers 410 record_erased with what remains provable.
func TestRecordReadVerified(t *testing.T) {
	t.Parallel()
	onBothStores(t, testRecordReadVerified)
}

// TestForgedCheckpointRows writes checkpoint rows behind the store's back:
// one beyond the tree's size and one, for the size the tree has, signed by
// a key the log does not hold. Neither is ever served in place of a
// checkpoint the log signed: receipts and the served checkpoint verify
// with the log's key.
func TestForgedCheckpointRows(t *testing.T) {
	t.Parallel()
	onBothStores(t, testForgedCheckpointRows)
}

// onBothStores runs test over the gateway on a real SQLite and a real
// PostgreSQL store, with a handle on the database underneath.
func onBothStores(t *testing.T, test func(t *testing.T, h *harness, db tamperer)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		db, err := sql.Open("sqlite", filepath.Join(h.dir, sqlite.FileName))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		try := func(t *testing.T, q string, args ...any) error {
			_, err := db.ExecContext(t.Context(), strings.ReplaceAll(q, "$", "?"), args...)
			return err
		}
		test(t, h, tamperer{
			exec: mustExec(try), try: try,
			unlock:            `DROP TRIGGER evidence_no_rewrite`,
			unlockCheckpoints: `DROP TRIGGER evidence_checkpoints_within_tree`,
			now:               time.Now().UnixMicro(),
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := testenv.FreshDatabase(t, "credgate_records")
		st, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		h := newHarness(t, func(c *harnessConfig) { c.store = st })
		try := func(t *testing.T, q string, args ...any) error {
			_, err := conn.Exec(t.Context(), q, args...)
			return err
		}
		test(t, h, tamperer{
			exec: mustExec(try), try: try,
			unlock:            `ALTER TABLE evidence DISABLE TRIGGER evidence_no_rewrite`,
			unlockCheckpoints: `ALTER TABLE evidence_checkpoints DISABLE TRIGGER evidence_checkpoints_within_tree`,
			now:               time.Now(),
		})
	})
}

// mustExec fails the test when the database refuses a statement.
func mustExec(try func(t *testing.T, q string, args ...any) error) func(t *testing.T, q string, args ...any) {
	return func(t *testing.T, q string, args ...any) {
		t.Helper()
		if err := try(t, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func testForgedCheckpointRows(t *testing.T, h *harness, db tamperer) {
	_, tok := h.partner("checkpoints", "public_tendering")
	vs, err := evidence.Verifiers(h.evidence.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	forger := testenv.Signer(t, testEvidenceOrigin)
	n := 0
	check := func() string {
		t.Helper()
		n++
		subject := testenv.USCC(t, fmt.Sprintf("91110000MA00300%02d", n))
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(subject, "public_tendering"))
		if res.Status != http.StatusOK {
			t.Fatalf("check: %d %s", res.Status, res.Body)
		}
		return res.json(t)["check_id"].(string)
	}
	verifies := func(what, id string) {
		t.Helper()
		res := h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+id, tok, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: receipt %d %s", what, res.Status, res.Body)
		}
		r, err := evidence.ParseReceipt(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := evidence.VerifyReceipt(r, vs); err != nil {
			t.Fatalf("%s: the receipt does not verify: %v", what, err)
		}
		res = h.do(http.MethodGet, "/v1/evidence/checkpoint", "", "", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: checkpoint %d %s", what, res.Status, res.Body)
		}
		var cp struct {
			Checkpoint string `json:"checkpoint"`
		}
		_ = json.Unmarshal(res.Body, &cp)
		if _, err := evidence.OpenCheckpoint([]byte(cp.Checkpoint), vs, testEvidenceOrigin); err != nil {
			t.Fatalf("%s: the served checkpoint does not verify: %v: %s", what, err, res.Body)
		}
	}
	const insert = `INSERT INTO evidence_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)`
	sign := func(size uint64) evidence.SignedCheckpoint {
		t.Helper()
		sc, err := forger.Sign(size, [32]byte{9})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	forge := func(size uint64) {
		t.Helper()
		sc := sign(size)
		db.exec(t, insert, int64(size), sc.Root[:], sc.Note, db.now)
	}
	verifies("before forging", check())
	head, err := h.store.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The database itself refuses a row beyond the tree, and one for the
	// tree's size with another root.
	for _, size := range []uint64{head.Size + 1000, head.Size} {
		sc := sign(size)
		if err := db.try(t, insert, int64(size), sc.Root[:], sc.Note, db.now); err == nil {
			t.Fatalf("a checkpoint row of %d records (the tree has %d, root forged) was accepted", size, head.Size)
		}
	}
	// Whoever can lift that trigger can still write such rows: reads hold
	// them to the same rule.
	db.exec(t, db.unlockCheckpoints)
	// A row far beyond the tree: the first stored for its size, it would
	// otherwise be the latest forever.
	forge(head.Size + 1000)
	verifies("a row beyond the tree", check())
	// A row for the size the tree has after the next check, stored before
	// the log signs that size.
	id := check()
	head, err = h.store.TreeHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	forge(head.Size)
	verifies("a foreign row for the tree's size", id)
}

func testRecordReadVerified(t *testing.T, h *harness, db tamperer) {
	_, tok := h.partner("records", "public_tendering")
	type made struct {
		id, subject string
		index       uint64
		leaf        string
	}
	var checks []made
	for i := range 4 {
		subject := testenv.USCC(t, fmt.Sprintf("91110000MA00200%02d", i))
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(subject, "public_tendering"))
		if res.Status != http.StatusOK {
			t.Fatalf("check: %d %s", res.Status, res.Body)
		}
		m := res.json(t)
		rc := m["receipt"].(map[string]any)
		checks = append(checks, made{id: m["check_id"].(string), subject: subject,
			index: uint64(rc["log_index"].(float64)), leaf: rc["leaf_hash"].(string)})
	}
	get := func(c made) response { return h.doJSON(http.MethodGet, "/v1/checks/"+c.id, tok, nil) }
	for _, c := range checks {
		if res := get(c); res.Status != http.StatusOK {
			t.Fatalf("read back %s before tampering: %d %s", c.id, res.Status, res.Body)
		}
	}
	corrupt := func(what string, c made) {
		t.Helper()
		res := get(c)
		problemCode(t, res, http.StatusInternalServerError, "evidence_corrupt")
		if strings.Contains(string(res.Body), c.subject) || strings.Contains(string(res.Body), "outcome") {
			t.Fatalf("%s: the corrupt record was served: %s", what, res.Body)
		}
	}
	byID := func(id string) []byte {
		t.Helper()
		rec, err := h.store.Record(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Body
	}

	// 1. One byte of a body changes (the answer's outcome, say), past the
	// append-only trigger, which lets a body only be erased.
	body := byID(checks[0].id)
	body[len(body)/2] ^= 0x01
	db.exec(t, db.unlock)
	db.exec(t, `UPDATE evidence SET body = $1 WHERE id = $2`, body, checks[0].id)
	corrupt("changed body", checks[0])

	// 2. Two rows swap places: each body still matches its own hash, but
	// neither record is the one the tree holds at its new index.
	i, j := checks[1].index, checks[2].index
	db.exec(t, `UPDATE evidence SET idx = 1000000000 WHERE idx = $1`, int64(i))
	db.exec(t, `UPDATE evidence SET idx = $1 WHERE idx = $2`, int64(i), int64(j))
	db.exec(t, `UPDATE evidence SET idx = $1 WHERE idx = 1000000000`, int64(j))
	corrupt("swapped rows", checks[1])
	corrupt("swapped rows", checks[2])

	// 3. A body is erased, the documented way (body and salt deleted, the
	// rest kept): 410 with the record's place in the log and its receipt.
	e := checks[3]
	db.exec(t, `UPDATE evidence SET body = $1, salt = $2 WHERE id = $3`, []byte{}, []byte{}, e.id)
	m := problemCode(t, get(e), http.StatusGone, "record_erased")
	rec, _ := m["record"].(map[string]any)
	if rec["id"] != e.id || uint64(rec["log_index"].(float64)) != e.index || rec["leaf_hash"] != e.leaf {
		t.Fatalf("erased: record %v, want id %s, index %d, leaf %s", rec, e.id, e.index, e.leaf)
	}
	rc, _ := m["receipt"].(map[string]any)
	if rc == nil || rc["leaf_hash"] != e.leaf || uint64(rc["leaf_index"].(float64)) != e.index {
		t.Fatalf("erased: no receipt proving the leaf: %v", m["receipt"])
	}
	// The receipt still proves the record hash into the signed tree; only
	// the body is gone.
	raw, err := json.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := evidence.ParseReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := evidence.Verifiers(h.evidence.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifyReceipt(r, vs); err == nil || !strings.Contains(err.Error(), "erased") {
		t.Fatalf("erased receipt: %v, want the erased record reported", err)
	}
}
