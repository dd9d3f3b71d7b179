package gateway

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseInstant: the `at` query parameter of GET /v1/subjects/{id}/status
// never panics, refuses anything longer than an RFC 3339 time can be, and
// every time it accepts names one instant that survives a round trip.
func FuzzParseInstant(f *testing.F) {
	for _, s := range []string{"2026-03-01T09:00:00+08:00", "2026-03-01T01:00:00Z", "2026-03-01T01:00:00.123456789Z",
		"2026-03-01", "2026-03-01T09:00:00", "2026-02-30T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59",
		"2026-03-01T09:00:00+08:00" + strings.Repeat("0", 30), "", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseInstant(raw)
		if err != nil {
			return
		}
		if len(raw) > maxInstantLen {
			t.Fatalf("accepted %d bytes", len(raw))
		}
		again, err := parseInstant(got.Format(time.RFC3339Nano))
		if err != nil || !again.Equal(got) {
			t.Fatalf("round trip of %q: %v %v", raw, again, err)
		}
	})
}
