package sqlite_test

import (
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/storetest"
)

// TestFollowUpReplicasConformance opens two stores on one database file: a
// served SQLite database has one server (its data dir is locked), but the
// stores keep feedback and commitment changes to one per place whoever
// writes.
func TestFollowUpReplicasConformance(t *testing.T) {
	storetest.RunFollowUpReplicas(t, func(t *testing.T) [2]storetest.FollowUpStore {
		dir := t.TempDir()
		var s [2]storetest.FollowUpStore
		for i := range s {
			st, err := sqlite.Open(t.Context(), dir)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			s[i] = st
		}
		return s
	})
}
