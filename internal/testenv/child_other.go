//go:build !linux

package testenv

import "os/exec"

// DieWithTest does nothing where the kernel cannot tie a child's life to
// its parent's (the tests' t.Cleanup still stops it).
func DieWithTest(*exec.Cmd) {}
