//go:build !linux

package main

import (
	"errors"
	"time"
)

// pinCPUs: --cpu pins with sched_setaffinity, which only Linux has here.
func pinCPUs([]int) error {
	return errors.New("pinning is supported on Linux only; elsewhere run the load generator under the system's own tool")
}

// benchCPUTime is not measured off Linux.
func benchCPUTime() time.Duration { return 0 }
