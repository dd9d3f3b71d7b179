package config

import (
	"strings"
	"testing"
)

// The screening settings come from the environment and flags like every
// other store setting: serve reads the store section, so a replica can be
// pointed at the screenings directory it shares with the others, and a
// partner's cap on unfinished jobs is set, not fixed at 2.
func TestScreeningSettings(t *testing.T) {
	c, err := load(t, []string{"store"}, map[string]string{
		"CREDGATE_SCREENINGS_DIR": "/srv/credgate/screenings", "CREDGATE_SCREENINGS_MAX_UNFINISHED": "5"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.ScreeningsDir != "/srv/credgate/screenings" || c.Store.ScreeningsMaxUnfinished != 5 {
		t.Fatalf("from the environment: dir %q, max %d", c.Store.ScreeningsDir, c.Store.ScreeningsMaxUnfinished)
	}
	c, err = load(t, []string{"store"}, nil, "", "--screenings-dir", "/mnt/shared", "--screenings-max-unfinished", "1")
	if err != nil || c.Store.ScreeningsDir != "/mnt/shared" || c.Store.ScreeningsMaxUnfinished != 1 {
		t.Fatalf("from flags: %+v %v", c.Store, err)
	}
	for _, v := range []string{"0", "1001", "two"} {
		_, err := load(t, []string{"store"}, map[string]string{"CREDGATE_SCREENINGS_MAX_UNFINISHED": v}, "")
		if err == nil || !strings.Contains(err.Error(), "store.screenings_max_unfinished") || !strings.Contains(err.Error(), "from 1 to 1000") {
			t.Errorf("max unfinished %q: %v", v, err)
		}
	}
}
