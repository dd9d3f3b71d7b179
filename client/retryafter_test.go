package client

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRetryAfter: both forms of RFC 9110's Retry-After, and nothing else.
func TestRetryAfter(t *testing.T) {
	date := "Sun, 06 Dec 2026 23:00:00 GMT"
	for _, tc := range []struct {
		value, date string
		want        time.Duration
	}{
		{"", "", 0},
		{"2", "", 2 * time.Second},
		{" 3 ", "", 3 * time.Second},
		{"0", "", 0},
		{"007", "", 7 * time.Second},
		{"1x", "", 0},
		{"-1", "", 0},
		{"+1", "", 0},
		{"1.5", "", 0},
		{"1 2", "", 0},
		{"99999999999999999999999", "", math.MaxInt64},
		{"Sun, 06 Dec 2026 23:00:05 GMT", date, 5 * time.Second},
		{"Sunday, 06-Dec-26 23:01:00 GMT", date, time.Minute},
		{"Sun Dec  6 23:00:30 2026", date, 30 * time.Second},
		{"Sun, 06 Dec 2026 22:59:00 GMT", date, 0},
		{"Sun, 06 Dec 2026 23:00:05", date, 0},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After", tc.value)
		}
		if tc.date != "" {
			h.Set("Date", tc.date)
		}
		if got := RetryAfter(h); got != tc.want {
			t.Errorf("Retry-After %q (Date %q): %v, want %v", tc.value, tc.date, got, tc.want)
		}
	}
	// Without a Date the HTTP-date counts from now.
	h := http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}
	if got := RetryAfter(h); got < 58*time.Minute || got > time.Hour {
		t.Errorf("an HTTP-date an hour ahead, no Date: %v", got)
	}
}

// FuzzRetryAfter: the header comes from whatever answered the client. No
// value makes a negative wait; a run of digits is exactly that many
// seconds (saturating); anything that is neither delay-seconds nor an
// HTTP-date is no wait.
func FuzzRetryAfter(f *testing.F) {
	for _, v := range []string{"1", "120", "1x", "-5", "Sun, 06 Dec 2026 23:00:05 GMT", "99999999999999999999"} {
		f.Add(v, "Sun, 06 Dec 2026 23:00:00 GMT")
	}
	f.Fuzz(func(t *testing.T, value, date string) {
		h := http.Header{}
		h.Set("Retry-After", value)
		h.Set("Date", date)
		got := RetryAfter(h)
		if got < 0 {
			t.Fatalf("Retry-After %q: negative wait %v", value, got)
		}
		v := strings.TrimSpace(h.Get("Retry-After"))
		digits := v != "" && strings.Trim(v, "0123456789") == ""
		if digits {
			want := time.Duration(math.MaxInt64)
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n <= int64(math.MaxInt64/time.Second) {
				want = time.Duration(n) * time.Second
			}
			if got != want {
				t.Fatalf("Retry-After %q: %v, want %v", value, got, want)
			}
			return
		}
		if _, err := http.ParseTime(v); err != nil && got != 0 {
			t.Fatalf("Retry-After %q is neither form, yet a wait of %v", value, got)
		}
	})
}
