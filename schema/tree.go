package schema

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gitgrant/gitgrant"
)

// FileKind tells regular files from what must never be read as a request.
type FileKind int

const (
	Regular FileKind = iota
	Symlink
	Irregular // a device, socket, submodule or anything else
)

// File is one file of an access repository, wherever it was read from (a
// work tree, a git revision). Path is slash-separated and relative to the
// repository root.
type File struct {
	Path string
	Data []byte
	Kind FileKind
	// Size is the file's full size; Data holds at most MaxFileSize+1 bytes.
	Size int64
}

// ReadTree reads gitgrant.yaml and every file under requests/ from a work
// tree. A missing config is reported by Validate, not here; failing to read
// the tree at all is an error, never an empty result.
func ReadTree(root string) (config *File, requests []File, err error) {
	if f, err := readFile(root, gitgrant.ConfigPath); err == nil {
		config = &f
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	dir := filepath.Join(root, gitgrant.RequestsDir)
	if info, err := os.Lstat(dir); err == nil && !info.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory: request files live in requests/<provider>/", dir)
	}
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			requests = append(requests, File{Path: rel, Kind: Symlink})
		case !e.Type().IsRegular():
			requests = append(requests, File{Path: rel, Kind: Irregular})
		default:
			f, err := readFile(root, rel)
			if err != nil {
				return err
			}
			requests = append(requests, f)
		}
		return nil
	})
	if err != nil {
		return nil, nil, &gitgrant.SystemError{System: "filesystem", Op: "read " + dir, Err: err}
	}
	return config, requests, nil
}

// ReadFiles reads the named files (relative to root), for validating only
// what a change touched.
func ReadFiles(root string, paths []string) (config *File, requests []File, err error) {
	for _, p := range paths {
		rel := filepath.ToSlash(filepath.Clean(p))
		info, err := os.Lstat(filepath.Join(root, rel))
		if err != nil {
			return nil, nil, &gitgrant.SystemError{System: "filesystem", Op: "read " + p, Err: err}
		}
		var f File
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			f = File{Path: rel, Kind: Symlink}
		case !info.Mode().IsRegular():
			f = File{Path: rel, Kind: Irregular}
		default:
			if f, err = readFile(root, rel); err != nil {
				return nil, nil, &gitgrant.SystemError{System: "filesystem", Op: "read " + p, Err: err}
			}
		}
		if rel == gitgrant.ConfigPath {
			config = &f
		} else {
			requests = append(requests, f)
		}
	}
	if config == nil { // requests are always judged by the config
		if f, err := readFile(root, gitgrant.ConfigPath); err == nil {
			config = &f
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &gitgrant.SystemError{System: "filesystem", Op: "read " + gitgrant.ConfigPath, Err: err}
		}
	}
	return config, requests, nil
}

// readFile reads at most MaxFileSize+1 bytes: enough to know a file is too
// large without holding all of it.
func readFile(root, rel string) (File, error) {
	fh, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return File{}, err
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return File{}, err
	}
	data, err := io.ReadAll(io.LimitReader(fh, gitgrant.MaxFileSize+1))
	if err != nil {
		return File{}, err
	}
	return File{Path: rel, Data: data, Kind: Regular, Size: info.Size()}, nil
}

// Options tune Validate.
type Options struct {
	// Now is the time expiries are judged against; zero means time.Now().
	Now time.Time
	// Workers bounds parallel parsing; zero means GOMAXPROCS.
	Workers int
	// Cache, when set, keeps parsed request files between calls, so that a
	// long-running process parses only files that changed.
	Cache *ParseCache
	// At, when it has a file's path, is the time that file's time-based
	// rules are judged at instead of Now: for a request already on the main
	// branch, when it got there. A request whose `expires` has passed since
	// is expired, not invalid.
	At map[string]time.Time
	// Committed says the files are already on a branch (a whole-tree
	// `gitgrant validate`), not a change under review: a request whose
	// `expires` has passed is then a warning, because revoking it and
	// removing the file is the reconciler's job. In a pull request that
	// adds such a file it is an error.
	Committed bool
}

// ParseCache remembers the structural parse of request files by path and
// content. Policy checks still run on every call (they depend on the
// config and the clock); only YAML and schema work is saved. Safe for
// concurrent use. The cached requests are shared: callers must not modify
// them.
type ParseCache struct {
	mu  sync.Mutex
	m   map[string]parsed // by path; an entry counts only for the same content
	cfg parsedConfig      // the last configuration loaded
}

type parsedConfig struct {
	path, data string
	cfg        *gitgrant.Config
	diags      gitgrant.Diagnostics
}

// config loads a configuration file, again only when its path or
// content changed: every pass of serve validates by the same one. The
// configuration is shared, as cached requests are: nobody changes it.
func (c *ParseCache) config(f File) (*gitgrant.Config, gitgrant.Diagnostics) {
	if c == nil || f.Kind != Regular {
		return loadConfigFile(f)
	}
	c.mu.Lock()
	p := c.cfg
	c.mu.Unlock()
	if p.data != "" && p.path == f.Path && p.data == string(f.Data) && int64(len(f.Data)) == f.Size {
		return p.cfg, append(gitgrant.Diagnostics(nil), p.diags...)
	}
	cfg, diags := loadConfigFile(f)
	c.mu.Lock()
	c.cfg = parsedConfig{f.Path, string(f.Data), cfg, append(gitgrant.Diagnostics(nil), diags...)}
	c.mu.Unlock()
	return cfg, diags
}

type parsed struct {
	data  string
	req   *gitgrant.Request
	diags gitgrant.Diagnostics
}

// maxCached bounds the cache; past it the cache starts over, which costs
// one full parse and never correctness.
const maxCached = 1 << 20

func (c *ParseCache) load(path string, data []byte) (*gitgrant.Request, gitgrant.Diagnostics) {
	if c == nil {
		return LoadRequest(path, data)
	}
	c.mu.Lock()
	p, ok := c.m[path]
	c.mu.Unlock()
	if ok && p.data == string(data) { // compared without copying data
		return p.req, append(gitgrant.Diagnostics(nil), p.diags...)
	}
	req, diags := LoadRequest(path, data)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[string]parsed{}
	}
	c.m[path] = parsed{string(data), req, append(gitgrant.Diagnostics(nil), diags...)}
	c.mu.Unlock()
	return req, diags
}

// FileReport is the outcome for one file.
type FileReport struct {
	Path        string               `json:"path"`
	Kind        string               `json:"kind"` // "config" or "request"
	Request     *gitgrant.Request    `json:"request,omitempty"`
	Diagnostics gitgrant.Diagnostics `json:"diagnostics"`
}

// Report is the outcome of validating a repository or part of one.
type Report struct {
	Config *gitgrant.Config `json:"-"`
	Files  []FileReport     `json:"files"`
}

// ConfigFile is the report of gitgrant.yaml: always the first file.
func (r *Report) ConfigFile() *FileReport {
	if r == nil || len(r.Files) == 0 {
		return &FileReport{Path: gitgrant.ConfigPath}
	}
	return &r.Files[0]
}

// Requests are the reports of the request files, in path order.
func (r *Report) Requests() []FileReport {
	if r == nil || len(r.Files) == 0 {
		return nil
	}
	return r.Files[1:]
}

// Diagnostics returns every file's diagnostics, in file order.
func (r *Report) Diagnostics() gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	for _, f := range r.Files {
		out = append(out, f.Diagnostics...)
	}
	return out
}

// Counts returns how many errors and warnings the report holds.
func (r *Report) Counts() (errs, warnings int) {
	for _, d := range r.Diagnostics() {
		if d.Severity == gitgrant.SeverityWarning {
			warnings++
		} else {
			errs++
		}
	}
	return errs, warnings
}

// Validate checks a config and request files. Every file is judged on its
// own: one bad file yields its own diagnostics and never hides another's.
// Requests are checked against policy only when the config is valid.
func Validate(config *File, requests []File, opts Options) *Report {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	rep := &Report{}
	cfgReport := FileReport{Path: gitgrant.ConfigPath, Kind: "config"}
	if config == nil {
		cfgReport.Diagnostics = gitgrant.Diagnostics{{Position: gitgrant.Position{File: gitgrant.ConfigPath}, Severity: gitgrant.SeverityError,
			Message: "gitgrant.yaml not found at the repository root", Hint: "create it (see docs/formats.md), or point --repo at the access repository"}}
	} else {
		cfgReport.Path = config.Path
		rep.Config, cfgReport.Diagnostics = opts.Cache.config(*config)
	}
	rep.Files = append(rep.Files, cfgReport)

	var checker *Policy
	if rep.Config != nil {
		checker = NewPolicy(rep.Config, opts.Now)
		checker.committed = opts.Committed
	}
	results := make([]FileReport, len(requests))
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Workers take the next file by counting: a channel hand-off per file
	// costs as much as a small file's checks.
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(workers, max(len(requests), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(requests); i = int(next.Add(1) - 1) {
				at, ok := opts.At[requests[i].Path]
				if !ok {
					at = opts.Now
				}
				results[i] = validateRequest(requests[i], checker, opts.Cache, at)
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Path != "" {
			rep.Files = append(rep.Files, r)
		}
	}
	sort.SliceStable(rep.Files[1:], func(i, j int) bool { return rep.Files[1+i].Path < rep.Files[1+j].Path })
	if checker == nil && config != nil && len(requests) > 0 {
		rep.Files[0].Diagnostics = append(rep.Files[0].Diagnostics, gitgrant.Diagnostic{
			Position: gitgrant.Position{File: config.Path}, Severity: gitgrant.SeverityWarning,
			Message: "policy checks of request files were skipped because gitgrant.yaml has errors", Hint: "fix gitgrant.yaml first"})
	}
	return rep
}

func loadConfigFile(f File) (*gitgrant.Config, gitgrant.Diagnostics) {
	if d, bad := checkKind(f); bad {
		return nil, gitgrant.Diagnostics{d}
	}
	return LoadConfig(f.Path, f.Data)
}

// validateRequest judges one file under requests/. A zero FileReport means
// the file is not a request and is deliberately passed over: see
// besideRequests.
func validateRequest(f File, checker *Policy, cache *ParseCache, at time.Time) FileReport {
	rep := FileReport{Path: f.Path, Kind: "request"}
	fail := func(msg, hint string) FileReport {
		rep.Diagnostics = gitgrant.Diagnostics{{Position: gitgrant.Position{File: f.Path}, Severity: gitgrant.SeverityError, Message: msg, Hint: hint}}
		return rep
	}
	base := path.Base(f.Path)
	switch {
	case besideRequests(f.Path):
		return FileReport{}
	case !strings.HasPrefix(f.Path, gitgrant.RequestsDir+"/"):
		return fail("not a request file: request files live under requests/<provider>/", "move it to requests/<provider>/<name>.yaml")
	case !gitgrant.IsRequestPath(f.Path):
		return fail(fmt.Sprintf("%q is not a request file: only .yaml and .yml files under requests/ are", base),
			"rename it to .yaml if it is a request, else move it out of requests/: only *.md files and dotfiles may sit beside requests")
	case gitgrant.ProviderFolder(f.Path) == "":
		return fail("request file at the root of requests/", fmt.Sprintf("move it into the provider's folder: requests/<provider>/%s", base))
	}
	if what := unsafePathChar(f.Path); what != "" {
		return fail(fmt.Sprintf("the path %s holds %s, which a request path may not", strconv.Quote(f.Path), what),
			"rename the file with letters, digits, '-', '_' and '.' only, as requests/<provider>/<login>-<role>.yaml: the path is written into commit trailers, comments and the audit trail")
	}
	if d, bad := checkKind(f); bad {
		rep.Diagnostics = gitgrant.Diagnostics{d}
		return rep
	}
	req, diags := cache.load(f.Path, f.Data)
	rep.Request, rep.Diagnostics = req, diags
	if req != nil && checker != nil {
		rep.Diagnostics = append(rep.Diagnostics, checker.CheckAt(req, at)...)
		rep.Diagnostics.Sort()
		if rep.Diagnostics.HasErrors() {
			rep.Request = nil
		}
	}
	return rep
}

// besideRequests reports whether p is a file that may sit among request
// files without being one, and is passed over in silence: documentation
// (*.md) or a hidden file (.gitkeep). Any other file under requests/ that
// gitgrant.IsRequestPath refuses is most likely a request with a wrong
// name, and an error.
func besideRequests(p string) bool {
	return strings.HasPrefix(path.Base(p), ".") || strings.EqualFold(path.Ext(p), ".md")
}

// unsafePathChar names the first character a request path must not hold,
// or returns "". Control and format characters (a newline, a tab, NUL, an
// escape sequence, a bidi override, a zero-width space) and line
// separators could forge a line or hide text wherever the path is written:
// the trailers of a cleanup commit, a pull request comment, a log. A
// backtick and angle brackets are markup in those comments.
func unsafePathChar(p string) string {
	if !utf8.ValidString(p) {
		return "bytes that are not valid UTF-8"
	}
	for _, r := range p {
		switch {
		case r == '\n':
			return "a newline (U+000A)"
		case r == '\r':
			return "a carriage return (U+000D)"
		case r == '\t':
			return "a tab (U+0009)"
		case r == '`':
			return "a backtick (`)"
		case r == '<' || r == '>':
			return fmt.Sprintf("%q", r)
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp):
			return fmt.Sprintf("the invisible character %U", r)
		}
	}
	return ""
}

// checkKind rejects files that must not be parsed at all.
func checkKind(f File) (gitgrant.Diagnostic, bool) {
	d := gitgrant.Diagnostic{Position: gitgrant.Position{File: f.Path}, Severity: gitgrant.SeverityError}
	switch {
	case f.Kind == Symlink:
		d.Message, d.Hint = "is a symbolic link", "replace it with a regular file: a link could point anywhere, and what it says is not what was reviewed"
	case f.Kind == Irregular:
		d.Message, d.Hint = "is not a regular file", "replace it with a regular YAML file"
	case f.Size > gitgrant.MaxFileSize || len(f.Data) > gitgrant.MaxFileSize:
		size := max(f.Size, int64(len(f.Data)))
		d.Message, d.Hint = fmt.Sprintf("file is %d bytes, over the %d KiB limit", size, gitgrant.MaxFileSize>>10), "a file this large is not written by hand; remove what is not needed"
	default:
		return d, false
	}
	return d, true
}
