// Package exec reaches any target system through a configured program.
// Each call runs the program once (never through a shell) with one JSON
// request on stdin and reads one JSON answer from stdout; the program sees
// only PATH and the environment variables the configuration allows, and is
// killed with its whole process group when it overruns its timeout. The
// protocol is documented in docs/providers/exec.md.
package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// Type is the `type:` of an exec provider in gitgrant.yaml.
const Type = "exec"

// ProtocolVersion is the version of the request and answer documents.
const ProtocolVersion = 1

// Defaults and bounds of a call.
const (
	DefaultTimeout = 30 * time.Second
	maxStdout      = 4 << 20
	maxStderr      = 4 << 10
	maxName        = 1024
)

// Request is the document a program reads on stdin.
type Request struct {
	Version  int    `json:"version"`
	Op       string `json:"op"` // grant, revoke, list, check
	Provider string `json:"provider"`
	// Role is gitgrant's role name; Target its name in the target system.
	Role      string `json:"role,omitempty"`
	Target    string `json:"target,omitempty"`
	Principal string `json:"principal,omitempty"`
	// Until is when a grant must end (RFC 3339, UTC); absent for a grant
	// without end.
	Until string `json:"until,omitempty"`
}

// Answer is the document a program writes on stdout.
type Answer struct {
	OK      bool           `json:"ok"`
	Members []AnswerMember `json:"members,omitempty"`
	// Error explains a failure in words for people; never a secret.
	Error string `json:"error,omitempty"`
	// NotFound says the principal or role does not exist in the target.
	NotFound bool `json:"not_found,omitempty"`
	// InvalidName says the name cannot be used with the target.
	InvalidName bool `json:"invalid_name,omitempty"`
	// Retryable says the same call may succeed later (the target was down).
	Retryable bool `json:"retryable,omitempty"`
}

// AnswerMember is one member in a list answer.
type AnswerMember struct {
	Principal string `json:"principal"`
	Until     string `json:"until,omitempty"`
}

// Provider runs the configured program. It is safe for concurrent use:
// each call is its own process.
type Provider struct {
	name         string
	cfg          gitgrant.ProviderConfig
	argv         []string
	env          []string
	timeout      time.Duration
	nativeExpiry bool
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.Checker       = (*Provider)(nil)
	_ providers.NativeExpirer = (*Provider)(nil)
)

var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// Settings are an exec provider entry's settings in gitgrant.yaml, as
// exec.schema.json beside this file describes them.
type Settings struct {
	// Command is the program and its arguments; no shell.
	Command      []string `json:"command"`
	Timeout      string   `json:"timeout"`
	Env          []string `json:"env"`
	NativeExpiry bool     `json:"native_expiry"`
}

// Open is the providers.Factory of exec. It checks the settings; the
// program first runs on the first call.
var Open = providers.Typed(openWith)

// openWith opens the provider from its decoded settings.
func openWith(ctx context.Context, cfg gitgrant.ProviderConfig, s Settings, deps providers.Deps) (providers.Provider, error) {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return nil, fmt.Errorf("provider %s: command must be a non-empty list of strings (the program and its arguments; no shell)", cfg.Name)
	}
	timeout := DefaultTimeout
	if s.Timeout != "" {
		var err error
		if timeout, err = time.ParseDuration(s.Timeout); err != nil || timeout <= 0 {
			return nil, fmt.Errorf("provider %s: timeout %q is not a positive duration like 30s", cfg.Name, s.Timeout)
		}
	}
	env := []string{"PATH=" + deps.Getenv("PATH")}
	for _, k := range s.Env {
		if !envName.MatchString(k) || k == "PATH" {
			return nil, fmt.Errorf("provider %s: env: %q is not a variable name like MY_TOKEN", cfg.Name, k)
		}
		if v := deps.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if err := providers.CheckTargets(cfg, validName); err != nil {
		return nil, err
	}
	return &Provider{name: cfg.Name, cfg: cfg, argv: s.Command, env: env, timeout: timeout, nativeExpiry: s.NativeExpiry}, nil
}

// validName keeps names a program can read back unambiguously: JSON
// carries anything, but control characters and invalid UTF-8 are the
// stuff of log injection and confused scripts.
func validName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", providers.ErrInvalidName)
	case len(s) > maxName:
		return fmt.Errorf("%w: longer than %d bytes", providers.ErrInvalidName, maxName)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %q is not valid UTF-8", providers.ErrInvalidName, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: %q contains the character %U", providers.ErrInvalidName, s, r)
		}
	}
	return nil
}

func (p *Provider) request(op, role, principal string) (Request, error) {
	req := Request{Version: ProtocolVersion, Op: op, Provider: p.name}
	if role != "" || op != "check" {
		target, err := providers.DeclaredTarget(p.cfg, role)
		if err != nil {
			return req, err
		}
		req.Role, req.Target = role, target
	}
	if op == "grant" || op == "revoke" {
		if err := validName(principal); err != nil {
			return req, fmt.Errorf("provider %s: principal: %w", p.name, err)
		}
		req.Principal = principal
	}
	return req, nil
}

// Members asks the program for the role's members.
func (p *Provider) Members(ctx context.Context, role string) ([]providers.Member, error) {
	req, err := p.request("list", role, "")
	if err != nil {
		return nil, err
	}
	ans, err := p.call(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]providers.Member, 0, len(ans.Members))
	for _, m := range ans.Members {
		if m.Principal == "" {
			return nil, p.protocolError(req, errors.New("a member without principal"))
		}
		member := providers.Member{Principal: m.Principal}
		if m.Until != "" && p.nativeExpiry {
			if member.Until, err = time.Parse(time.RFC3339, m.Until); err != nil {
				return nil, p.protocolError(req, fmt.Errorf("member %q: until %q is not RFC 3339", m.Principal, m.Until))
			}
		}
		out = append(out, member)
	}
	return providers.SortMembers(out), nil
}

// Grant asks the program to grant; it must treat "already granted" as
// success (and update the expiry where it keeps one).
func (p *Provider) Grant(ctx context.Context, g providers.Grant) error {
	req, err := p.request("grant", g.Role, g.Principal)
	if err != nil {
		return err
	}
	if !g.Until.IsZero() {
		req.Until = g.Until.UTC().Format(time.RFC3339)
	}
	_, err = p.call(ctx, req)
	return err
}

// Revoke asks the program to revoke; "not granted" must be success.
func (p *Provider) Revoke(ctx context.Context, role, principal string) error {
	req, err := p.request("revoke", role, principal)
	if err != nil {
		return err
	}
	_, err = p.call(ctx, req)
	return err
}

// Check asks the program whether it can reach the target and act on it.
func (p *Provider) Check(ctx context.Context) error {
	req, err := p.request("check", "", "")
	if err != nil {
		return err
	}
	_, err = p.call(ctx, req)
	return err
}

// NativeExpiry reports the native_expiry setting: the program promises to
// make the target end grants at their until.
func (p *Provider) NativeExpiry() bool { return p.nativeExpiry }

// Close does nothing: no process outlives its call.
func (p *Provider) Close() error { return nil }

func (p *Provider) system(req Request, retryable bool, err error) error {
	op := req.Op
	if req.Role != "" {
		op += " " + req.Role
	}
	if req.Principal != "" {
		op += " " + req.Principal
	}
	return &gitgrant.SystemError{System: "exec " + p.name, Op: op, Err: err, Retryable: retryable}
}

func (p *Provider) protocolError(req Request, err error) error {
	return p.system(req, false, fmt.Errorf("%s broke the protocol (docs/providers/exec.md): %w", p.argv[0], err))
}

// call runs the program once for req.
func (p *Provider) call(ctx context.Context, req Request) (Answer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Answer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.argv[0], p.argv[1:]...)
	cmd.Env = p.env
	cmd.Stdin = bytes.NewReader(append(body, '\n'))
	stdout := &boundedBuffer{max: maxStdout}
	stderr := &boundedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	killGroupOnCancel(cmd)
	// Children that keep stdout open must not hold the call past its end.
	cmd.WaitDelay = 2 * time.Second
	runErr := cmd.Run()

	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && runErr != nil:
		return Answer{}, p.system(req, true, fmt.Errorf("%s did not answer within %v and was killed%s", p.argv[0], p.timeout, stderr.suffix()))
	case runErr != nil && cmd.ProcessState == nil: // it never started
		return Answer{}, p.system(req, false, fmt.Errorf("cannot run %s: %w", p.argv[0], errors.Unwrap(runErr)))
	}
	var ans Answer
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	if derr := dec.Decode(&ans); derr != nil || dec.More() || stdout.truncated {
		if runErr != nil {
			return Answer{}, p.system(req, true, fmt.Errorf("%s failed (%v)%s", p.argv[0], runErr, stderr.suffix()))
		}
		return Answer{}, p.protocolError(req, fmt.Errorf("stdout is not one JSON answer%s", stderr.suffix()))
	}
	if ans.OK {
		if runErr != nil {
			return Answer{}, p.protocolError(req, fmt.Errorf("answered ok but exited with %v", runErr))
		}
		return ans, nil
	}
	msg := ans.Error
	if msg == "" {
		msg = "failed without saying why"
	}
	switch {
	case ans.NotFound:
		return Answer{}, fmt.Errorf("provider %s: %s: %s: %w", p.name, req.Op, msg, providers.ErrNotFound)
	case ans.InvalidName:
		return Answer{}, fmt.Errorf("provider %s: %s: %s: %w", p.name, req.Op, msg, providers.ErrInvalidName)
	}
	return Answer{}, p.system(req, ans.Retryable, errors.New(msg+stderr.suffix()))
}

// boundedBuffer keeps the first max bytes written and discards the rest,
// so that a chatty program cannot exhaust memory. The buffer is a field,
// not embedded: an embedded bytes.Buffer would lend its ReadFrom to
// io.Copy, which would then bypass Write and its bound.
type boundedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) Bytes() []byte { return b.buf.Bytes() }

// suffix renders captured stderr for an error message.
func (b *boundedBuffer) suffix() string {
	s := strings.TrimSpace(strings.ToValidUTF8(b.buf.String(), ""))
	if s == "" {
		return ""
	}
	if b.truncated {
		s += " [...]"
	}
	return "; stderr: " + s
}
