package breaker_test

import (
	"slices"
	"testing"

	"github.com/sony/gobreaker/v2"

	"github.com/credgate/credgate/internal/breaker"
)

func TestStateName(t *testing.T) {
	for s, want := range map[gobreaker.State]string{gobreaker.StateClosed: "closed", gobreaker.StateHalfOpen: "half_open", gobreaker.StateOpen: "open"} {
		if got := breaker.StateName(s); got != want || !slices.Contains(breaker.StateNames(), got) {
			t.Errorf("%v: %q, want %q", s, got, want)
		}
	}
}
