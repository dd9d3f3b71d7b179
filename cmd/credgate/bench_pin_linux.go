package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pinCPUs restricts every thread of this process to cpus. Affinity is per
// thread on Linux: the threads the Go runtime already has are pinned one
// by one, and those it starts later inherit the mask from the thread
// that starts them. Twice over, for a thread started during the first pass.
func pinCPUs(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			err = unix.SchedSetaffinity(tid, &set)
			if err != nil && !errors.Is(err, unix.ESRCH) { // ESRCH: the thread has exited
				return fmt.Errorf("sched_setaffinity(CPU %s): %w", formatCPUList(cpus), err)
			}
		}
	}
	return nil
}

// benchCPUTime is the CPU time (user and system) this process has used.
func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
