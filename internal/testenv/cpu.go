package testenv

import (
	"syscall"
	"testing"
	"time"
)

// ProcessCPU is the CPU time (user and system) the test process has used
// so far, every goroutine's and thread's: what a benchmark reports beside
// wall time when the work it measures runs partly in the background.
func ProcessCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
