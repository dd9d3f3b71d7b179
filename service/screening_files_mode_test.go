package service_test

import (
	"bytes"
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/service"
)

// ndjsonLines is a screening file of the given subjects.
func ndjsonLines(ids ...string) []byte {
	var b bytes.Buffer
	for _, id := range ids {
		b.WriteString(`{"id":"` + id + `"}` + "\n")
	}
	return b.Bytes()
}

// A job's files hold persons' identity numbers and answers about them:
// only credgate's user may read any of them.
func TestScreeningFilesArePrivate(t *testing.T) {
	t.Parallel()
	w := newLCWorld(t, cstAt(2026, 3, 1, 10))
	dir := t.TempDir()
	sc := service.NewScreenings(w.checker, w.store, dir)
	j, err := sc.Submit(context.Background(), admin, "bank_credit", service.FormatNDJSON, bytes.NewReader(ndjsonLines(lcPerson, lcOrg)))
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		err := filepath.WalkDir(filepath.Join(dir, j.ID), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %s has mode %v, want no access for group or others", when, strings.TrimPrefix(path, dir), info.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check("queued")
	runScreenings(t, sc)
	if j = waitScreening(t, sc, j.ID); j.State != service.ScreeningDone {
		t.Fatalf("job: %+v", j)
	}
	check("done")
}
