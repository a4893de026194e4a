package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/ghapi"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/all"
)

// newEngine opens the access repository and, when credentials are in the
// environment (GITHUB_TOKEN or a GitHub App, with GITHUB_REPOSITORY), the
// GitHub client that verifies approvals.
func newEngine(ctx context.Context, e *env, source, branch string, logger *slog.Logger) (*engine.Engine, error) {
	cfg, err := ghapi.ConfigFromEnv(e.getenv, os.ReadFile)
	if err != nil {
		return nil, usageError{fmt.Sprintf("GitHub settings: %v", err)}
	}
	repo, err := gitrepo.Open(ctx, gitrepo.Options{Source: source, Branch: branch, Token: cfg.Token})
	if err != nil {
		return nil, err
	}
	deps := providers.DefaultDeps()
	deps.Getenv = e.getenv
	deps.Logger = logger
	deps.Clock = e.clock()
	eng := &engine.Engine{Repo: repo, Registry: all.Registry(), Deps: deps, Logger: logger, Clock: e.clock(),
		TrustRoot: e.getenv("GITGRANT_TRUST_ROOT")}
	if (cfg.Token != "" || cfg.AppID != 0) && cfg.Repository != "" {
		client, err := ghapi.New(cfg, ghapi.Options{Clock: e.clock(), Logger: logger})
		if err != nil {
			return nil, usageError{fmt.Sprintf("GitHub settings: %v", err)}
		}
		v := approval.New(client, engine.FileReader{Repo: repo}, &approval.MemoryCache{})
		v.Clock, v.Logger = e.clock(), logger
		eng.GitHub, eng.Verifier = client, v
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
