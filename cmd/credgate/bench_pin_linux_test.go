package main

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinCPUsPinsEveryThread: --cpu restricts every thread the runtime
// has, not only the calling one (affinity is per thread on Linux). The
// test process's own mask is put back afterwards.
func TestPinCPUsPinsEveryThread(t *testing.T) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Skipf("sched_getaffinity: %v", err)
	}
	var all []int
	for c := range benchMaxCPU {
		if orig.IsSet(c) {
			all = append(all, c)
		}
	}
	t.Cleanup(func() {
		if err := pinCPUs(all); err != nil {
			t.Errorf("restore the mask: %v", err)
		}
	})
	if err := pinCPUs(all[:1]); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread has exited
		}
		if set.Count() != 1 || !set.IsSet(all[0]) {
			t.Fatalf("thread %d may run on %d CPUs after pinning to CPU %d", tid, set.Count(), all[0])
		}
	}
}
