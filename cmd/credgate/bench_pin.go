package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// benchMaxCPU bounds the CPU numbers --cpu accepts: unix.CPUSet, the
// affinity mask pinCPUs builds, has this many bits.
const benchMaxCPU = 1024

// parseCPUList reads a CPU list as taskset -c takes it: numbers and
// ranges, comma separated ("0", "0,2-3").
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CPU number or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("%q is not a CPU number or range", part)
			}
		}
		if a < 0 || b < a || b >= benchMaxCPU {
			return nil, fmt.Errorf("%q: CPUs are 0..%d, ranges low-high", part, benchMaxCPU-1)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, errors.New("no CPU")
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func formatCPUList(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}
