package deploy

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// imageUser is the user and group the image runs credgate as, from the
// Dockerfile's USER line (numeric, so that the runtime needs no passwd
// lookup).
func imageUser(t *testing.T) (uid, gid uint32) {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER\s+(\d+):(\d+)\s*$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("the Dockerfile has no numeric USER uid:gid line")
	}
	u, _ := strconv.ParseUint(m[1], 10, 32)
	g, _ := strconv.ParseUint(m[2], 10, 32)
	return uint32(u), uint32(g)
}
