package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
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

// pacerThread gives the calling goroutine a thread of its own, for good:
// the thread ends with the goroutine, so its timer slack, set to 1 ns (the
// kernel's default is 50 µs), never reaches another goroutine's sleeps.
func pacerThread() {
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
}

// sleepUntil sleeps until t with nanosleep, which the kernel's
// high-resolution timers wake within tens of microseconds, in steps of at
// most 10 ms so that a cancelled ctx is seen; false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		ts := unix.NsecToTimespec(int64(min(d, 10*time.Millisecond)))
		_ = unix.Nanosleep(&ts, nil) // EINTR: the loop sleeps the rest
	}
}
