package kube

// Building kube-apiserver and etcd once per machine.
//
// The programs come from the Go module proxy, through the module in
// build/ (its go.mod pins k8s.io/kubernetes and replaces every staging
// module by the matching release). The binaries are kept in a cache folder
// keyed by that module's go.mod, go.sum, etcd main and the Go version, so
// that a new version is a new folder and the cached path costs a stat. A
// file lock makes test binaries that start together build once: the
// others wait and then find the binaries.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Version is the Kubernetes release the test server runs; build/go.mod
// pins the same.
const Version = "v1.37.2"

// Binaries are the programs the test server runs.
type Binaries struct {
	APIServer, Etcd string
	// Built says this call built them; BuildTime is how long that took.
	Built     bool
	BuildTime time.Duration
}

// errCannotBuild says the binaries could not be had: no go command, no
// module proxy. Locally that skips; under CI=true it fails.
type errCannotBuild struct{ err error }

func (e *errCannotBuild) Error() string { return e.err.Error() }
func (e *errCannotBuild) Unwrap() error { return e.err }

// EnsureBinaries returns kube-apiserver and etcd, building them into the
// cache on first use. GITGRANT_TEST_KUBE_APISERVER and
// GITGRANT_TEST_ETCD name binaries to use instead; GITGRANT_KUBE_CACHE
// the cache folder (default: gitgrant-kube beside the Go build cache).
func EnsureBinaries() (Binaries, error) {
	api, etcd := os.Getenv("GITGRANT_TEST_KUBE_APISERVER"), os.Getenv("GITGRANT_TEST_ETCD")
	if api != "" && etcd != "" {
		return Binaries{APIServer: api, Etcd: etcd}, nil
	}
	src, err := buildModuleDir()
	if err != nil {
		return Binaries{}, &errCannotBuild{err}
	}
	key, err := buildKey(src)
	if err != nil {
		return Binaries{}, &errCannotBuild{err}
	}
	root, err := cacheRoot()
	if err != nil {
		return Binaries{}, &errCannotBuild{err}
	}
	dir := filepath.Join(root, key)
	bins := Binaries{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}
	if present(bins) {
		return bins, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, &errCannotBuild{err}
	}
	unlock, err := lock(filepath.Join(root, key+".lock"))
	if err != nil {
		return Binaries{}, &errCannotBuild{err}
	}
	defer unlock()
	if present(bins) { // another test binary built them while we waited
		return bins, nil
	}
	fmt.Fprintf(os.Stderr, "testenv/kube: building kube-apiserver %s and etcd into %s (once per machine; minutes on a small one)\n", Version, dir)
	start := time.Now()
	builds := []struct{ pkg, out string }{
		{"k8s.io/kubernetes/cmd/kube-apiserver", bins.APIServer},
		{"./etcd", bins.Etcd},
	}
	for _, b := range builds {
		if err := goBuild(src, b.pkg, b.out); err != nil {
			return Binaries{}, err
		}
	}
	bins.Built, bins.BuildTime = true, time.Since(start)
	fmt.Fprintf(os.Stderr, "testenv/kube: built in %s\n", bins.BuildTime.Round(time.Second))
	return bins, nil
}

func present(b Binaries) bool {
	for _, p := range []string{b.APIServer, b.Etcd} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// goBuild builds pkg of the build module into out, through a temporary
// name so that a half-written binary is never found.
func goBuild(src, pkg, out string) error {
	tmp := out + ".tmp"
	// -trimpath and -s keep the binaries small; the module's go.sum is
	// the only source of truth (no network beyond the module proxy).
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags="+ldflags(), "-o", tmp, pkg)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false", "CGO_ENABLED=0")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	release := dieWithParent(cmd)
	err := cmd.Run()
	release()
	if err != nil {
		os.Remove(tmp)
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return &errCannotBuild{fmt.Errorf("running go build: %w", err)}
		}
		msg := strings.TrimSpace(buf.String())
		// A module that cannot be downloaded is a missing prerequisite
		// (no proxy locally); anything else is a broken build.
		if strings.Contains(msg, "dial tcp") || strings.Contains(msg, "proxy") || strings.Contains(msg, "no such host") {
			return &errCannotBuild{fmt.Errorf("go build %s: %s", pkg, msg)}
		}
		return fmt.Errorf("go build %s in %s: %v: %s", pkg, src, err, msg)
	}
	return os.Rename(tmp, out)
}

// ldflags strips the binaries and stamps the version variables a release
// build stamps: the server reports them, and clients compare them.
func ldflags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(Version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	return "-s -w" +
		" -X k8s.io/component-base/version.gitVersion=" + Version +
		" -X k8s.io/component-base/version.gitMajor=" + major +
		" -X k8s.io/component-base/version.gitMinor=" + minor +
		" -X k8s.io/component-base/version.gitTreeState=clean"
}

// buildModuleDir is the build/ folder next to this file.
func buildModuleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "build")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	// Built with -trimpath: find gitgrant's module root from here.
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the build module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("finding the build module: not inside gitgrant's module")
	}
	dir := filepath.Join(filepath.Dir(gomod), "internal", "testing", "testenv", "kube", "build")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("finding the build module: %w", err)
	}
	return dir, nil
}

// buildKey names the cache folder: the Kubernetes version for people, and
// a hash of everything that decides the binaries.
func buildKey(src string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", filepath.Join("etcd", "main.go")} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	v, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	h.Write(v)
	h.Write([]byte(ldflags()))
	return Version + "-" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

func cacheRoot() (string, error) {
	if d := os.Getenv("GITGRANT_KUBE_CACHE"); d != "" {
		return d, nil
	}
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOCACHE: %w", err)
	}
	gocache := strings.TrimSpace(string(out))
	if gocache == "" || gocache == "off" {
		return "", errors.New("no Go build cache (GOCACHE=off); set GITGRANT_KUBE_CACHE")
	}
	return filepath.Join(filepath.Dir(gocache), "gitgrant-kube"), nil
}

// lock takes an exclusive flock on path, waiting for another holder.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
