package config

import (
	"errors"
	"testing"
)

// FuzzConfigFile: any file either loads into a configuration whose every
// value passes its setting's own check, or is refused with an *Error; it
// never panics.
func FuzzConfigFile(f *testing.F) {
	f.Add(defaultsYAML)
	f.Add([]byte("cache:\n  max_staleness: 40s\naccess:\n  trusted_proxies: [10.0.0.1, 10.0.0.0/8]\n"))
	f.Add([]byte("server:\n  addr:\n    host: x\n"))
	f.Add([]byte("log: [a, b]\n"))
	f.Add([]byte("- just\n- a list\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.apply(data, Origin{FromFile, "fuzz.yaml"}); err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("not a configuration error: %v", err)
			}
			return
		}
		// What loaded reads back and loads again to the same values.
		for _, s := range settings {
			v := s.get(c)
			again := &Config{origins: map[string]Origin{}}
			if err := s.set(again, v); err != nil {
				t.Fatalf("%s = %q loaded but does not load again: %v", s.Key, v, err)
			}
			if s.get(again) != v {
				t.Fatalf("%s: %q reads back as %q", s.Key, v, s.get(again))
			}
		}
	})
}
