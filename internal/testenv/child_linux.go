package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithTest makes the process cmd starts receive SIGKILL when the test
// process that starts it dies, so that a test run killed from outside (a
// timeout, an interrupted run) leaves no server behind holding its ports,
// its files and whatever else it inherited. Call it before cmd.Start.
//
// The signal is tied to the OS thread that starts the child; Go keeps a
// test's threads for the life of the process, so in practice it fires when
// the test binary exits.
func DieWithTest(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
