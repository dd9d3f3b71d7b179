package postgres_test

import (
	"fmt"
	"os"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai without the system's zoneinfo
)

// TestMain runs the PostgreSQL tests, the conformance suites among them,
// in the zone of the deployments that found times answered in +08:00
// (TZ=Asia/Shanghai): PostgreSQL's driver returns timestamptz in the
// process's zone, so a store that forgets to answer in UTC shows it here,
// and a date a store computes in the local zone is a day off around
// midnight UTC. time.Local is set before any test runs, so no test reads
// it while it changes (-race). CREDGATE_TEST_TZ names another zone ("UTC"
// or "Local": the process's own).
func TestMain(m *testing.M) {
	zone := os.Getenv("CREDGATE_TEST_TZ")
	if zone == "" {
		zone = "Asia/Shanghai"
	}
	if zone != "Local" {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			fmt.Fprintf(os.Stderr, "CREDGATE_TEST_TZ: %v\n", err)
			os.Exit(2)
		}
		time.Local = loc
	}
	os.Exit(m.Run())
}
