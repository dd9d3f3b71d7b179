package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
)

const archiveOrigin = "archive.test/evidence"

// archiveLog is a log built in a real store for the archive tests.
type archiveLog struct {
	dir      string   // receipts, keys, archives
	keys     string   // a file with both verifier keys
	newKey   string   // the key after the rotation
	receipts []string // issued before the export: a check, the record later erased, one signed after the rotation
	erased   string   // the receipt of the erased record, issued after its erasure
}

// buildArchiveLog writes 300 checks and acts, rotates the evidence key,
// writes 100 more, erases record 9's body (exec runs SQL on the store's
// database) and keeps receipts along the way, as serve would hand them out.
func buildArchiveLog(t *testing.T, c config.Store, exec func(string), erase string) archiveLog {
	t.Helper()
	ctx := context.Background()
	raw, _, closeStore, err := openStore(ctx, c, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	app := evidence.NewAppender(raw)
	defer app.Close()
	dir := t.TempDir()
	out := archiveLog{dir: dir}
	old := testenv.Signer(t, archiveOrigin)
	lg := evidence.NewLog(raw, old, evidence.WithMinCheckpointGap(0))
	if err := lg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var recs []evidence.Record
	add := func(n int) {
		batch := make([]evidence.Record, n)
		for i := range batch {
			k := len(recs) + i
			batch[i] = evidence.Record{ID: fmt.Sprintf("chk_%04d", k), Kind: evidence.KindCheck, Partner: "cg_partner",
				At: time.Now(), Body: fmt.Appendf(nil, `{"subject":{"id":"91350100M000%05d"},"outcome":"clear"}`, k)}
			if k%4 == 0 {
				batch[i].ID, batch[i].Kind, batch[i].Partner = fmt.Sprintf("act_%04d", k), evidence.KindAdmin, "admin"
				batch[i].Body = fmt.Appendf(nil, `{"act":"partner_created","n":%d}`, k)
			}
		}
		got, err := app.Append(ctx, batch...)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, got...)
	}
	receipt := func(l *evidence.Log, rec evidence.Record, name string) string {
		r, err := l.Receipt(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	add(150)
	out.receipts = append(out.receipts, receipt(lg, recs[5], "check.json"), receipt(lg, recs[9], "to-be-erased.json"))
	add(150)
	if _, err := lg.Covering(ctx, 300); err != nil {
		t.Fatal(err)
	}
	rotated := testenv.Signer(t, archiveOrigin)
	lg = evidence.NewLog(raw, rotated, evidence.WithMinCheckpointGap(0), evidence.WithPreviousKeys(old.VerifierKey()))
	if err := lg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	add(100)
	out.receipts = append(out.receipts, receipt(lg, recs[350], "after-rotation.json"))
	exec(erase)
	gone, err := raw.Record(ctx, recs[9].ID)
	if err != nil || len(gone.Body) != 0 {
		t.Fatalf("erased record: %v %q", err, gone.Body)
	}
	out.erased = receipt(lg, gone, "erased.json")
	out.keys = filepath.Join(dir, "evidence.vkeys")
	out.newKey = rotated.VerifierKey()
	if err := os.WriteFile(out.keys, []byte(old.VerifierKey()+"\n"+rotated.VerifierKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestArchiveSQLite(t *testing.T) {
	t.Parallel()
	dir := sqlitetest.Dir(t)
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec := func(q string) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	l := buildArchiveLog(t, config.Store{DataDir: dir}, exec, `UPDATE evidence SET body = x'', salt = x'' WHERE idx = 9`)
	archiveScenario(t, l, []string{"--data-dir", dir}, func() {
		exec(`DROP TRIGGER evidence_nodes_no_update`)
		exec(`UPDATE evidence_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 260`)
	})
}

func TestArchivePostgres(t *testing.T) {
	t.Parallel()
	url := testenv.FreshDatabase(t, "archive_export")
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	exec := func(q string) { pgExec(t, conn, q) }
	l := buildArchiveLog(t, config.Store{PostgresURL: url}, exec, `UPDATE evidence SET body = '', salt = '' WHERE idx = 9`)
	archiveScenario(t, l, []string{"--postgres-url", url}, func() {
		exec(`ALTER TABLE evidence_nodes DISABLE TRIGGER USER`)
		exec(`UPDATE evidence_nodes SET hash = '\x` + strings.Repeat("00", 32) + `'::bytea WHERE level = 0 AND idx = 260`)
	})
}

// archiveScenario exports the log as a directory and as a tar, verifies
// both offline with the receipts issued before, tampers with a byte of an
// entry, a tile and a checkpoint, and then corrupts the store (corrupt)
// for an export that must fail and leave nothing.
func archiveScenario(t *testing.T, l archiveLog, store []string, corrupt func()) {
	out := filepath.Join(l.dir, "log-archive")
	tarOut := filepath.Join(l.dir, "log-archive.tar")
	for _, o := range []string{out, tarOut} {
		code, msg := runCLI(append(append([]string{"archive"}, store...), o)...)
		if code != 0 || !strings.Contains(msg, `"archive.test/evidence", 400 records`) || !strings.Contains(msg, "2 verifier keys, with bodies, 1 erased") {
			t.Fatalf("archive %s: exit %d\n%s", o, code, msg)
		}
	}
	if code, msg := runCLI("archive", "--data-dir", filepath.Join(l.dir, "nothing"), filepath.Join(l.dir, "none")); code != 1 || !strings.Contains(msg, "no evidence log to archive in") {
		t.Fatalf("archive of a data dir with no database: exit %d\n%s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "nothing")); err == nil {
		t.Fatal("archive created a data dir")
	}
	if code, msg := runCLI(append(append([]string{"archive"}, store...), out)...); code != 1 || !strings.Contains(msg, "exists") {
		t.Fatalf("archive over an existing one: exit %d\n%s", code, msg)
	}
	for _, o := range []string{out, tarOut} {
		args := append([]string{"verify", "--archive", o, "--key", l.keys}, l.receipts...)
		code, msg := runCLI(args...)
		if code != 0 || !strings.Contains(msg, o+": OK: archive of \"archive.test/evidence\", 400 records") ||
			!strings.Contains(msg, "erased: 1 records' bodies were erased (each still proven in the tree), at positions 9") ||
			!strings.Contains(msg, "check.json: OK: check record chk_0005") ||
			!strings.Contains(msg, "to-be-erased.json: OK: check record chk_0009") || !strings.Contains(msg, "(the archive holds the record with its body erased)") ||
			!strings.Contains(msg, "after-rotation.json: OK: ") || strings.Contains(msg, "keys: verified with the archive's own") {
			t.Fatalf("verify --archive %s: exit %d\n%s", o, code, msg)
		}
		if code, msg := runCLI("verify", "--archive", o, "--key", l.keys, l.erased); code != exitErased || !strings.Contains(msg, "erased.json: ERASED: record 9 ") {
			t.Fatalf("erased receipt against %s: exit %d\n%s", o, code, msg)
		}
	}
	if code, msg := runCLI("verify", "--archive", out); code != 0 || !strings.Contains(msg, "keys: verified with the archive's own keys") {
		t.Fatalf("verify --archive with its own keys: exit %d\n%s", code, msg)
	}
	if code, msg := runCLI("verify", "--archive", out, "--key", l.newKey); code != 1 ||
		!strings.Contains(msg, "FAILED: checkpoints/000: checkpoint signature does not verify: signed only by keys not trusted here") {
		t.Fatalf("only the rotated key pinned: exit %d\n%s", code, msg)
	}

	// One byte changed, in a copy each time.
	for _, tc := range []struct{ file, want string }{
		{"tile/entries/000", "tile/entries/000"},
		{"tile/0/000", "tile/0/000: hash "},
		{"tile/0/001.p/144", "tile/0/001.p/144: hash "},
		{"checkpoints/300", "checkpoints/300: checkpoint signature does not verify"},
		{"records/001.p/144", "records/001.p/144: "},
	} {
		cp := filepath.Join(l.dir, "tampered-"+strings.ReplaceAll(tc.file, "/", "-"))
		if err := os.CopyFS(cp, os.DirFS(out)); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(cp, filepath.FromSlash(tc.file))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(tc.file, "checkpoints/") {
			// The root's first character, to another base64 one: the note
			// still parses, and its signature no longer covers it (a
			// byte flipped at random could make the note malformed).
			lines := strings.SplitN(string(b), "\n", 4)
			r := []byte(lines[2])
			if r[0] == 'A' {
				r[0] = 'B'
			} else {
				r[0] = 'A'
			}
			lines[2] = string(r)
			b = []byte(strings.Join(lines, "\n"))
		} else {
			b[len(b)/2] ^= 0x04
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, msg := runCLI("verify", "--archive", cp, "--key", l.keys, l.receipts[0]); code != 1 || !strings.Contains(msg, "FAILED: "+tc.want) {
			t.Fatalf("%s tampered: exit %d, want 1 naming %q\n%s", tc.file, code, tc.want, msg)
		}
	}
	// A stray file in a directory, and a byte of an entry inside the tar.
	if err := os.WriteFile(filepath.Join(out, "tile", "0", "999"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, msg := runCLI("verify", "--archive", out, "--key", l.keys); code != 1 || !strings.Contains(msg, "FAILED: tile/0/999: unexpected file") {
		t.Fatalf("stray file: exit %d\n%s", code, msg)
	}
	b, err := os.ReadFile(tarOut)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("\nid chk_0001\n"))
	if i < 0 {
		t.Fatal("no entry of chk_0001 in the tar")
	}
	b[i+len("\nid chk_000")] = '7'
	bad := filepath.Join(l.dir, "tampered.tar")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, msg := runCLI("verify", "--archive", bad, "--key", l.keys); code != 1 || !strings.Contains(msg, "record 1 (chk_0001): its id, kind, partner, time or record hash differ from its entry in tile/entries/000") {
		t.Fatalf("tar tampered: exit %d\n%s", code, msg)
	}

	// A store whose tree no longer matches its records is not archived,
	// and the failed export leaves nothing behind.
	corrupt()
	failed := filepath.Join(l.dir, "failed")
	for _, o := range []string{failed, failed + ".tar"} {
		code, msg := runCLI(append(append([]string{"archive"}, store...), o)...)
		if code != 1 || !strings.Contains(msg, "nothing written to "+o) || !strings.Contains(msg, "tile/0/001.p/144: hash 4 (tree node 0/260)") {
			t.Fatalf("archive of a corrupt store: exit %d\n%s", code, msg)
		}
	}
	left, _ := filepath.Glob(filepath.Join(l.dir, "*failed*"))
	if len(left) != 0 {
		t.Fatalf("a failed export left %v", left)
	}
}
