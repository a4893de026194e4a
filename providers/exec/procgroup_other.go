//go:build !unix

package exec

import "os/exec"

// killGroupOnCancel: without process groups only the program itself is
// killed (exec.CommandContext's default).
func killGroupOnCancel(cmd *exec.Cmd) {}
