package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// runAsMain makes a run of this test binary be credgate itself.
const runAsMain = "CREDGATE_TEST_RUN_AS_MAIN"

// TestMain lets the tests that need a real credgate process (SIGKILL,
// SIGTERM, several gateways on one log) start this test binary as
// credgate: the variable, inherited by the processes they start, makes
// it run main instead of the tests. Building a separate binary instead
// compiled credgate and every dependency a second time, without -race,
// inside the test run: most of a cold `go test -race ./...`
// (docs/PERFORMANCE.md). The servers now also run under the race detector
// when the tests do.
//
// A fuzzing worker is this test binary too, started by the fuzzing
// coordinator with the variable inherited: it must stay a test.
func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" && !fuzzWorker() {
		main()
		return
	}
	if err := os.Setenv(runAsMain, "1"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// longTest marks one of the package's longest tests (a minute or more
// under -race on a slow machine) to run in parallel with the others so
// marked. Each has its own servers, data directories and databases, and
// alone it left one of the two cores idle: the package's tests used
// about 1.1 cores over its 8.5 minutes. Tests that hold answers to a
// time bound (TestStoreFrozenAndStopped) stay out of it, so that another
// test's load does not decide them.
func longTest(t *testing.T) { t.Parallel() }

// fuzzWorker reports whether this process is a worker of go test -fuzz.
func fuzzWorker() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			return true
		}
	}
	return false
}

// buildBinary returns the credgate binary the process tests start: this
// test binary, which runs as credgate in them (TestMain).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	return bin
}

// loadUntil lets a load run until enough is done (cond) or for at most
// max: a test that stops a server under load waits no longer than needed.
func loadUntil(max time.Duration, cond func() bool) {
	deadline := time.Now().Add(max)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
