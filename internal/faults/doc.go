// Package faults is credgate's fault suite: tests, and nothing else, that
// run the real credgate binary against a PostgreSQL and a Redis of their
// own (started by the tests on free ports) and then freeze, stop and kill
// them, and credgate itself, under load. Each test reproduces one failure
// found when credgate was run as an operator would run it — a frozen
// database hanging requests, a stopped one answering 500, a replica signing
// with a key of its own, rejected work charged to a quota, a tampered
// record served, a forged checkpoint row, input read differently from other
// readers — and holds credgate to what its documents promise instead.
//
// It runs under a plain `go test ./...` (so CI runs it); without
// PostgreSQL's server programs or redis-server the tests that need them
// skip with a message, except under CI=true, where they fail. Run with -v
// to see the figures docs/EVIDENCE.md quotes. CREDGATE_FAULTS_BINARY names
// a credgate binary to test instead of building this tree's (another
// revision's, to see which of the findings it still has).
package faults
