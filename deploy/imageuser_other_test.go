//go:build !unix

package deploy

import (
	"io/fs"
	"os"
	"os/exec"
	"testing"
)

// Without unix owners and modes, the tests run as their own user.

func readableBy(fs.FileInfo, uint32, uint32) bool { return true }

func asImageUser() bool { return false }

func runAsImageUser(*testing.T, *exec.Cmd) {}

func ownByImageUser(*testing.T, string, os.FileMode) {}

func reachable(*testing.T, string) {}
