// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package kube

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's.
func dieWithParent(*exec.Cmd) (release func()) { return func() {} }
