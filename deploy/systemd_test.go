package deploy

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The unit migrates before it serves (ExecStartPre), and a migration of a
// large SQLite database outlasts systemd's default start timeout (90 s):
// 0014 alone took about 7 s per 300 000 checks. Timed out, it is rolled
// back, and Restart=on-failure starts it over, for ever. The start must
// not be timed out, or only after a long while.
func TestSystemdStartOutlastsMigrations(t *testing.T) {
	u := readUnit(t, "systemd/credgate.service")
	migrates := false
	for _, pre := range u["ExecStartPre"] {
		if f := strings.Fields(strings.TrimLeft(pre, "-+!@:")); len(f) >= 2 && strings.HasSuffix(f[0], "/credgate") && f[1] == "migrate" {
			migrates = true
		}
	}
	if !migrates {
		t.Fatalf("the unit does not migrate before serving: ExecStartPre %q", u["ExecStartPre"])
	}
	// TimeoutSec= sets the start timeout too; the last setting wins.
	var setting string
	for _, k := range []string{"TimeoutSec", "TimeoutStartSec"} {
		if v := u[k]; len(v) > 0 {
			setting = v[len(v)-1]
		}
	}
	if setting == "" {
		t.Fatal("no TimeoutStartSec=: systemd's default (90 s) would stop a long migration, and Restart= start it over")
	}
	d, err := systemdTimespan(setting)
	if err != nil {
		t.Fatalf("TimeoutStartSec=%s: %v", setting, err)
	}
	const least = time.Hour
	if d < least {
		t.Errorf("TimeoutStartSec=%s is %s: a migration of tens of millions of checks needs more than %s", setting, d, least)
	}
}

// systemdTimespan parses a systemd time span ("infinity", "90", "5min
// 20s", "1h30min"); 0 (as infinity) is returned as the longest duration.
func systemdTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return time.Duration(1<<63 - 1), nil
	}
	units := []struct {
		names []string
		d     time.Duration
	}{
		{[]string{"usec", "us", "µs"}, time.Microsecond},
		{[]string{"msec", "ms"}, time.Millisecond},
		{[]string{"seconds", "second", "sec", "s"}, time.Second},
		{[]string{"minutes", "minute", "min", "m"}, time.Minute},
		{[]string{"hours", "hour", "hr", "h"}, time.Hour},
		{[]string{"days", "day", "d"}, 24 * time.Hour},
		{[]string{"weeks", "week", "w"}, 7 * 24 * time.Hour},
	}
	var total time.Duration
	rest := strings.ReplaceAll(s, " ", "")
	if rest == "" {
		return 0, strconv.ErrSyntax
	}
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, err
		}
		rest = rest[i:]
		unit := time.Second // a bare number is seconds
		if rest != "" {
			found := false
		match:
			for _, u := range units {
				for _, name := range u.names {
					if strings.HasPrefix(rest, name) {
						unit, rest, found = u.d, rest[len(name):], true
						break match
					}
				}
			}
			if !found {
				return 0, strconv.ErrSyntax
			}
		}
		total += time.Duration(n * float64(unit))
	}
	if total == 0 {
		return time.Duration(1<<63 - 1), nil
	}
	return total, nil
}

func TestSystemdTimespan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90": 90 * time.Second, "45s": 45 * time.Second, "5min 20s": 5*time.Minute + 20*time.Second,
		"1h30min": 90 * time.Minute, "2h": 2 * time.Hour, "infinity": time.Duration(1<<63 - 1), "0": time.Duration(1<<63 - 1),
	} {
		if got, err := systemdTimespan(in); err != nil || got != want {
			t.Errorf("%q: %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "5 parsecs"} {
		if _, err := systemdTimespan(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}
