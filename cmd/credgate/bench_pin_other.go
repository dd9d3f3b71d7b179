//go:build !linux

package main

import (
	"context"
	"errors"
	"time"
)

// pinCPUs: --cpu pins with sched_setaffinity, which only Linux has here.
func pinCPUs([]int) error {
	return errors.New("pinning is supported on Linux only; elsewhere run the load generator under the system's own tool")
}

// benchCPUTime is not measured off Linux.
func benchCPUTime() time.Duration { return 0 }

// pacerThread: the thread's timer slack is set on Linux only.
func pacerThread() {}

// sleepUntil sleeps until t on a Go timer; false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
