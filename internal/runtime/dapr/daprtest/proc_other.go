//go:build !linux

package daprtest

import "os/exec"

// setDeathSignal does nothing where the kernel cannot kill children of a dead
// parent; the test's cleanups stop them.
func setDeathSignal(cmd *exec.Cmd) {}
