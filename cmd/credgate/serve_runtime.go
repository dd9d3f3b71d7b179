package main

import "runtime/debug"

// serveGCPercent is the garbage collector's pace for serve when GOGC is not
// set. At Go's default (100) a server at 2 000 checks/s on a live heap of
// about 10 MB collected about 9 times a second, and the marking (a quarter
// of the CPU, on a process that shares two cores with its database) was
// part of the p99 at that rate: with GC off the p99 fell by a fifth
// (docs/PERFORMANCE.md, "What a slow commit is made of"). At 400 the heap
// may grow to five times the live one before a collection; an operator
// whose replica holds a large live heap (the local cache) sets GOGC, which
// wins.
const serveGCPercent = 400

// setServeGC applies serveGCPercent unless GOGC is set (getenv is
// os.Getenv outside tests); it returns the percent now in force, and -1
// when the operator's GOGC is left as it is.
func setServeGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		return -1
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}
