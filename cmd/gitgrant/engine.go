package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
)

// engineOptions say which repository a command reconciles.
type engineOptions struct {
	Source, Branch string
	Logger         *slog.Logger
	// CacheDir holds clones of remote repositories (default: the user
	// cache directory).
	CacheDir string
}

// newEngine opens the access repository with the credentials in the
// environment (resolveAccess) and, when GitHub credentials are set, the
// client that verifies approvals. Credentials without a repository to
// verify against are a usage error, never a silent offline pass.
func newEngine(ctx context.Context, e *env, o engineOptions) (*engine.Engine, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	acc, err := resolveAccess(e, o.Source, true, logger)
	if err != nil {
		return nil, err
	}
	gopts := acc.Git
	gopts.Source, gopts.Branch, gopts.CacheDir = o.Source, o.Branch, o.CacheDir
	if xdg := e.getenv("XDG_CACHE_HOME"); gopts.CacheDir == "" && xdg != "" {
		gopts.CacheDir = filepath.Join(xdg, "gitgrant", "repos") // as on Linux, and on every system alike
	}
	repo, err := gitrepo.Open(ctx, gopts)
	if err != nil {
		return nil, err
	}
	if acc.Derived != "" {
		logger.Info("GITHUB_REPOSITORY not set: using the repository of "+acc.Derived, "repository", acc.GitHub.Repository)
	}
	deps := providers.DefaultDeps()
	deps.Getenv = e.getenv
	deps.Logger = logger
	deps.Clock = e.clock()
	eng := &engine.Engine{Repo: repo, Registry: e.registry(), Deps: deps, Logger: logger, Clock: e.clock(),
		TrustRoot: e.getenv("GITGRANT_TRUST_ROOT")}
	if acc.Client != nil {
		v := approval.New(acc.Client, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
		v.Clock, v.Logger = e.clock(), logger
		eng.GitHub, eng.Verifier = acc.Client, v
	}
	return eng, nil
}

func newLogger(e *env, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, usagef("unknown log format %q: use text or json", format)
}
