// SPDX-License-Identifier: Apache-2.0

package kube

import (
	"os/exec"
	"runtime"
	"syscall"
)

// dieWithParent makes the build end with the test binary that started it.
// A test that times out is killed without running its cleanups; its
// `go build` would go on compiling Kubernetes as an orphan while the next
// test binary, finding the lock free, starts another — on a busy machine
// they pile up. The parent-death signal is tied to the OS thread that
// starts the child, so the thread stays locked until the build returns.
func dieWithParent(cmd *exec.Cmd) (release func()) {
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return runtime.UnlockOSThread
}
