package main

import (
	"runtime/debug"
	"testing"
)

func TestServeGCDefault(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if got := setServeGC(func(string) string { return "" }); got != serveGCPercent {
		t.Fatalf("without GOGC: %d, want %d", got, serveGCPercent)
	}
	if now := debug.SetGCPercent(100); now != serveGCPercent {
		t.Fatalf("GC percent in force %d, want %d", now, serveGCPercent)
	}
	// The operator's GOGC wins, whatever it says.
	env := map[string]string{"GOGC": "50"}
	if got := setServeGC(func(k string) string { return env[k] }); got != -1 {
		t.Fatalf("with GOGC=50: %d, want -1 (left alone)", got)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Fatalf("with GOGC set the percent became %d", now)
	}
}
