//go:build unix

package exec

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel starts the program in its own process group and kills
// the whole group when the call's context ends, so that children it
// started (a shell pipeline, a CLI it wraps) die with it.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
