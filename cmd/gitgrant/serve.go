package main

import (
	"context"
	"net"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/serve"
	"github.com/gitgrant/gitgrant/schema"
)

func runServe(ctx context.Context, args []string, e *env) error {
	fs := newFlags("serve", "--listen ADDR [--repo DIR|URL] [--branch main] [--resync 10m] [--webhook-secret-env NAME]", `
Long-running reconciler. Passes (as 'gitgrant reconcile' runs them) never
overlap and run when a GitHub webhook says main changed (push to main, a pull
request merged, a review), when the next start or expiry in the plan is due,
and every --resync (with 10% jitter) to catch drift. A remote repository is
fetched before every pass; if it cannot be, revocations still happen and
grants wait.

Endpoints on --listen: POST /webhook (GitHub deliveries, verified with the
secret in the variable --webhook-secret-env names), GET /healthz, GET /readyz
(503 with the reason while the repository or gitgrant.yaml cannot be read),
GET /metrics (Prometheus). See docs/serve.md.

Run one replica: passes are serialised within the process, and every action
and cleanup push is idempotent, so an overlap converges, but two replicas do
the same work twice and may comment twice on a pull request.`, e)
	listen := fs.String("listen", "", "`address` to serve HTTP on, such as :8080")
	repoFlag := fs.String("repo", ".", "access repository: a local `DIR` (with an origin remote) or a remote URL")
	branch := fs.String("branch", gitrepo.DefaultBranch, "main `branch`")
	resync := fs.Duration("resync", 10*time.Minute, "`period` of full passes for drift (0 disables)")
	secretEnv := fs.String("webhook-secret-env", "GITGRANT_WEBHOOK_SECRET", "environment variable `NAME` holding the webhook secret")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "how long a running pass may take to finish at shutdown")
	ghBudget := fs.Duration("github-budget", 30*time.Second, "longest a pass waits on GitHub, for approvals and for pull request feedback each; past it grants wait and revocations go ahead (0: no bound)")
	noCleanup := fs.Bool("no-cleanup", false, "do not write notes or cleanup commits")
	logFormat := fs.String("log-format", "json", "`format` of the log on stderr: text or json")
	committer := fs.String("committer", "", "cleanup commit identity `\"Name <email>\"`")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *listen == "" {
		return usagef("serve: --listen is required (for example --listen :8080)")
	}
	if *resync < 0 {
		return usagef("serve: --resync must not be negative")
	}
	logger, err := newLogger(e, *logFormat)
	if err != nil {
		return err
	}
	commitOpts := gitrepo.CommitOptions{Clock: e.clock()}
	if *committer != "" {
		if commitOpts.Committer, err = parseCommitter(*committer); err != nil {
			return err
		}
	}
	secret := e.getenv(*secretEnv)
	if secret == "" {
		logger.Warn("no webhook secret: every delivery is refused; passes run on the timer and the resync only", "variable", *secretEnv)
	}
	eng, err := newEngine(ctx, e, engineOptions{Source: *repoFlag, Branch: *branch, Logger: logger})
	if err != nil {
		return err
	}
	if eng.Verifier == nil {
		logger.Warn("no GitHub credentials: approvals cannot be verified, so nothing new is granted; revocations go ahead")
	}
	eng.GitHubBudget = *ghBudget
	eng.Parsed = &schema.ParseCache{} // passes re-parse only the request files that changed
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return &gitgrant.SystemError{System: "network", Op: "listen on " + *listen, Err: err}
	}
	logger.Info("serving", "listen", ln.Addr().String(), "repo", eng.Repo.Source(), "branch", eng.Repo.Branch(), "resync", *resync)
	srv := serve.New(eng, serve.Options{
		Apply:         engine.ApplyOptions{Cleanup: !*noCleanup, Commit: commitOpts},
		Resync:        *resync,
		WebhookSecret: []byte(secret),
		ShutdownGrace: *grace,
		Clock:         e.clock(),
		Logger:        logger,
	})
	err = srv.Run(ctx, ln)
	logger.Info("stopped", "passes", srv.Passes())
	return err
}
