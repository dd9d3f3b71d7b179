package audit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// shortLeaves serves one leaf fewer than asked.
type shortLeaves struct{ audit.Log }

func (l shortLeaves) Leaves(ctx context.Context, from, to uint64) ([]evidence.AuditLeaf, error) {
	ls, err := l.Log.Leaves(ctx, from, to)
	if len(ls) > 0 {
		ls = ls[:len(ls)-1]
	}
	return ls, err
}

// TestCheckRecordsServedInconsistent: a log that answers with fewer leaves
// than asked failed, which the caller tells from a connection that failed
// (credgate audit exits 1 for the one, 5 for the other).
func TestCheckRecordsServedInconsistent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newServer(t)
	s.checks(t, 3)
	a, rep := s.follow(t, shortLeaves{s.admin})
	if err := a.CheckRecords(ctx, rep); !errors.Is(err, audit.ErrServedInconsistent) {
		t.Fatalf("short leaves: %v, want ErrServedInconsistent", err)
	}
}
