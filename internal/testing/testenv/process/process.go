// Package process runs the real servers that tests start themselves
// (slapd, etcd, kube-apiserver): a child that dies with the test binary,
// the end of its output kept for error messages, a readiness poll that
// notices an early exit, and a graceful stop. One helper for every kind
// of server, so that each starts, waits and stops the same way.
package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a started server.
type Process struct {
	name    string
	cmd     *exec.Cmd
	log     *lockedBuffer
	exited  chan struct{}
	waitErr error
}

// Options are what a server may need besides its binary and arguments.
type Options struct {
	// Env is added to the test binary's environment.
	Env []string
	// Credential is the user the server runs as; nil: the test's own.
	Credential *syscall.Credential
}

// Command is bin with args as a server of this package runs: as opts
// say, and killed when the test binary dies. It serves a server's set-up
// tools (initdb), which run to their end.
func Command(opts Options, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: opts.Credential, Pdeathsig: syscall.SIGKILL}
	if opts.Env != nil {
		cmd.Env = append(os.Environ(), opts.Env...)
	}
	return cmd
}

// Start starts bin with args.
func Start(bin string, args ...string) (*Process, error) {
	return StartWith(Options{}, bin, args...)
}

// StartWith starts bin with args as opts say. Pdeathsig fires when the
// thread that started the child exits, so the child is started from a
// locked thread that lives as long as it does.
func StartWith(opts Options, bin string, args ...string) (*Process, error) {
	p := &Process{name: filepath.Base(bin), log: &lockedBuffer{}, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := Command(opts, bin, args...)
		cmd.Stdout, cmd.Stderr = p.log, p.log
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.cmd = cmd
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	return p, nil
}

// Fail marks an error of a readiness check as final: the server answers,
// but wrongly, and waiting longer will not help.
func Fail(err error) error { return failed{err} }

type failed struct{ error }

func (f failed) Unwrap() error { return f.error }

// WaitReady polls ready every interval until it succeeds, fails with
// Fail, the process exits, or timeout passes; the process is stopped on
// failure (with grace, as Stop).
func (p *Process) WaitReady(what string, timeout, interval, grace time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		var final failed
		switch {
		case err == nil:
			return nil
		case errors.As(err, &final):
			p.Stop(grace)
			return final.error
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited at start (%v):\n%s", what, p.waitErr, Tail(p.log.String(), 30))
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			p.Stop(grace)
			return fmt.Errorf("%s was not ready within %v (%v):\n%s", what, timeout, err, Tail(p.log.String(), 30))
		}
	}
}

// Stop sends SIGTERM and waits up to grace (so that a database closes
// cleanly), then kills.
func (p *Process) Stop(grace time.Duration) error { return p.StopWith(syscall.SIGTERM, grace) }

// StopWith sends sig, the server's own signal to shut down, and waits up
// to grace, then kills.
func (p *Process) StopWith(sig syscall.Signal, grace time.Duration) error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s ignored %v for %v and was killed", p.name, sig, grace)
	}
}

// Output is what the process has written so far (about its last
// megabyte).
func (p *Process) Output() string { return p.log.String() }

// Tail returns the last lines of a log, for an error message.
func Tail(s string, lines int) string {
	parts := strings.Split(strings.TrimSpace(s), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// lockedBuffer is the process's output, written by the process's pipes
// and read for errors; it keeps about the last megabyte.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the last megabyte: enough to explain a failure.
	if b.buf.Len() > 1<<20 {
		rest := b.buf.Bytes()[b.buf.Len()-(1<<19):]
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
