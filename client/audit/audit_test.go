package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/client"
	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// The client satisfies what the auditor reads.
var _ audit.Log = (*client.Client)(nil)

const origin = "credgate.test/evidence"

// server is the gateway over SQLite with an evidence log, as serve wires
// it (checkpoints on demand only, so the test decides when one is signed).
type server struct {
	url    string
	signer *evidence.Signer
	admin  *client.Client
	dir    string // the SQLite store's directory
}

func newServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	dir := sqlitetest.Dir(t)
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	aud := service.NewAudit(app)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(aud), service.WithSecretCost(testenv.SecretCost()))
	if _, err := partners.EnsureAdmin(ctx, "admin", "admin-secret-for-tests-0123456789"); err != nil {
		t.Fatal(err)
	}
	signer := testenv.Signer(t, origin)
	lg := evidence.NewLog(st, signer, evidence.WithMinCheckpointGap(0))
	if err := lg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	srv := gateway.New(service.NewChecker(cat, st, app, st), service.NewEntries(st, cat, service.WithEntriesAudit(aud)),
		partners, access.NewTokens(key), gateway.WithEvidence(lg, service.NewReceipts(st, lg)))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); app.Close(); st.Close() })
	admin, err := client.New(ts.URL, client.WithClientSecret("admin", "admin-secret-for-tests-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return &server{url: ts.URL, signer: signer, admin: admin, dir: dir}
}

// checks runs n checks as a new partner and returns their receipts (whose
// fetching signs a checkpoint covering them).
func (s *server) checks(t *testing.T, n int) [][]byte {
	t.Helper()
	ctx := context.Background()
	p, err := s.admin.CreatePartner(ctx, client.PartnerSpec{Name: "某市公共资源交易中心", Actions: []string{"government_procurement"}})
	if err != nil {
		t.Fatal(err)
	}
	bank, _ := client.New(s.url, client.WithClientSecret(p.ClientID, p.ClientSecret))
	var out [][]byte
	for range n {
		a, err := bank.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: "91350100M000100Y43"}, Action: "government_procurement"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := bank.Receipt(ctx, a.CheckID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	// A subject whose check character is wrong is a client error with its
	// code, never an answer.
	if _, err := bank.Check(ctx, client.CheckRequest{Subject: client.Subject{ID: "91350100M000100Y44"}, Action: "government_procurement"}); !client.IsCode(err, "invalid_subject_id") {
		t.Fatalf("bad subject: %v", err)
	}
	return out
}

func TestReceiptsVerifyOfflineAgainstPinnedKey(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	receipts := s.checks(t, 3)
	vs, err := audit.Verifiers([]string{s.signer.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range receipts {
		v, err := audit.VerifyReceipt(r, vs, origin)
		if err != nil || v.Record.Kind != evidence.KindCheck {
			t.Fatalf("receipt: %+v, %v", v, err)
		}
	}
	if _, err := audit.VerifyReceipt(receipts[0], vs, "elsewhere"); err == nil {
		t.Fatal("a receipt of another origin verified")
	}
	other, _ := evidence.GenerateSignerKey("credgate.test")
	os, _ := evidence.NewSigner(origin, other)
	vsOther, _ := audit.Verifiers([]string{os.VerifierKey()})
	if _, err := audit.VerifyReceipt(receipts[0], vsOther, ""); !errors.Is(err, evidence.ErrCheckpointSignature) {
		t.Fatalf("a receipt verified against another key: %v", err)
	}
	if _, err := audit.Verifiers([]string{other}); err == nil || strings.Contains(err.Error(), other[20:]) {
		t.Fatalf("private key accepted or echoed: %v", err)
	}
	keys, err := audit.ParseKeys([]byte("# pinned\n" + s.signer.VerifierKey() + "\n"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("ParseKeys: %v %v", keys, err)
	}
}

func TestAuditorFollowsTheLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	s.checks(t, 2)
	vs, _ := audit.Verifiers([]string{s.signer.VerifierKey()})
	anon, _ := client.New(s.url)

	// First run: the checkpoint is the starting point.
	rep, err := audit.New(anon, vs).Follow(ctx, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("first audit: %+v %v", rep, err)
	}
	statePath := filepath.Join(t.TempDir(), "state.json")
	if err := audit.SaveState(statePath, rep.State(time.Now())); err != nil {
		t.Fatal(err)
	}
	prev, err := audit.LoadState(statePath)
	if err != nil || prev.Size != rep.Checkpoint.Size {
		t.Fatalf("state: %+v %v", prev, err)
	}

	// The log grows: consistent, whether the proof is asked for or built
	// from the tiles.
	s.checks(t, 300)
	tiles := &countingTiles{c: anon}
	for _, opts := range [][]audit.Option{nil, {audit.WithTiles(tiles)}} {
		rep, err := audit.New(anon, vs, opts...).Follow(ctx, prev)
		if err != nil || !rep.OK() || rep.Checkpoint.Size <= prev.Size || !strings.Contains(strings.Join(rep.Notes, "\n"), "consistent: the log of") {
			t.Fatalf("follow (%d options): %+v %v", len(opts), rep, err)
		}
	}
	if tiles.n == 0 {
		t.Fatal("WithTiles fetched no tile")
	}
	// Every record against the signed tree, with an administrator's token.
	a := audit.New(s.admin, vs)
	rep, err = a.Follow(ctx, prev)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRecords(ctx, rep); err != nil || !rep.OK() || rep.RecordsChecked != rep.Checkpoint.Size {
		t.Fatalf("records: %+v %v", rep.Problems, err)
	}

	// A log that served another history under the same key: the insider
	// holding the key cannot make it extend what was seen.
	rewritten, _ := s.signer.Sign(rep.Checkpoint.Size, [32]byte{7})
	rep, err = audit.New(forged{anon, rewritten.Note}, vs).Follow(ctx, prev)
	if err != nil || rep.OK() || rep.Problems[0].Kind != audit.Rewrite {
		t.Fatalf("rewritten log: %+v %v", rep, err)
	}
	shorter, _ := s.signer.Sign(prev.Size-1, [32]byte{7})
	rep, err = audit.New(forged{anon, shorter.Note}, vs).Follow(ctx, prev)
	if err != nil || rep.OK() || rep.Problems[0].Kind != audit.Truncation {
		t.Fatalf("truncated log: %+v %v", rep, err)
	}
	// A checkpoint signed by a key not pinned.
	foreign, _ := testenv.Signer(t, origin).Sign(rep.Checkpoint.Size, rep.Checkpoint.Root)
	if _, err := audit.New(forged{anon, foreign.Note}, vs).Follow(ctx, prev); !errors.Is(err, audit.ErrCheckpoint) {
		t.Fatalf("foreign checkpoint: %v", err)
	}
	// A state file whose checkpoint was edited is no starting point.
	bad := *prev
	bad.Checkpoint = strings.Replace(bad.Checkpoint, "\n", "\n1", 1)
	if _, err := audit.New(anon, vs).Follow(ctx, &bad); !errors.Is(err, audit.ErrState) {
		t.Fatalf("edited state: %v", err)
	}
}

// forged serves a given checkpoint and the real log's proofs.
type forged struct {
	*client.Client
	note []byte
}

func (f forged) Checkpoint(context.Context) ([]byte, error) { return f.note, nil }

// countingTiles counts the tiles fetched.
type countingTiles struct {
	c *client.Client
	n int
}

func (f *countingTiles) Tile(ctx context.Context, t evidence.TileCoord) ([]byte, error) {
	f.n++
	return f.c.Tile(ctx, t)
}

// follow is an auditor of log pinned to the server's key, and the report
// of its first Follow (no earlier checkpoint).
func (s *server) follow(t *testing.T, log audit.Log) (*audit.Auditor, *audit.Report) {
	t.Helper()
	vs, err := audit.Verifiers([]string{s.signer.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	a := audit.New(log, vs)
	rep, err := a.Follow(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, rep
}

// db is the server's SQLite store opened beside it, for tests that alter
// what it holds.
func (s *server) db(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(s.dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestCheckRecordsCatchesAlteredNode changes one interior node of the
// stored tree in the database: the leaves still rebuild the signed root,
// but receipts proving through the node fail, so the full audit must say
// which node was altered.
func TestCheckRecordsCatchesAlteredNode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newServer(t)
	s.checks(t, 6)
	a, rep := s.follow(t, s.admin)
	if err := a.CheckRecords(ctx, rep); err != nil || !rep.OK() {
		t.Fatalf("sound log: %+v %v", rep.Problems, err)
	}
	db := s.db(t)
	for _, q := range []string{`DROP TRIGGER evidence_nodes_no_update`,
		`UPDATE evidence_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 0`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, rep = s.follow(t, s.admin)
	if err := a.CheckRecords(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Kind != audit.Altered || !strings.Contains(rep.Problems[0].Message, "tree node 2/0 (level/index) is stored as 0000") {
		t.Fatalf("altered node: %+v", rep.Problems)
	}
}
