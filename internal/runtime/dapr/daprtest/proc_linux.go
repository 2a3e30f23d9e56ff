package daprtest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child when the test binary dies
// without running its cleanups (a panic in another goroutine, a timeout, a
// SIGKILL), so no daprd, placement or redis-server outlives the test run.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
