package gateway

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/credgate/credgate/service"
)

// A screening job's results that the partner's scope, narrowed since,
// no longer covers are 403 scope_narrowed: the partner is refused, not
// the server failing (500), and the code tells it from the refusals of a
// check (action_not_allowed, subject_kind_not_allowed).
func TestScopeNarrowedIsForbidden(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("screening scr_1: %w: its results answer about subjects of kind person, which it may no longer check", service.ErrScopeNarrowed)
	pr := problemFor(err)
	if pr.Status != http.StatusForbidden || pr.Code != "scope_narrowed" {
		t.Fatalf("problem %+v, want 403 scope_narrowed", pr)
	}
}
