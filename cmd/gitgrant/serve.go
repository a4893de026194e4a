package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/gitrepo"
	"github.com/gitgrant/gitgrant/internal/kubeclient"
	"github.com/gitgrant/gitgrant/internal/serve"
	"github.com/gitgrant/gitgrant/schema"
)

func runServe(ctx context.Context, args []string, e *env) error {
	fs := newFlags("serve", "--listen ADDR [--repo DIR|URL] [--branch main] [--resync 10m] [--webhook-secret-env NAME] [--leader-elect [--lease-name gitgrant] [--lease-namespace NS]]", `
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

The status page (off by default) shows who holds what, observed and
desired, upcoming starts and expiries, recent events, unobserved providers,
the policy in force and what holds grants back. --status-page serves it at
GET /status on --listen to requests with "Authorization: Bearer" and the
token in GITGRANT_STATUS_TOKEN; --status-addr 127.0.0.1:PORT serves it
without a token on a loopback-only listener of its own (for kubectl
port-forward or an authenticating proxy beside it).

Without --leader-elect, run one replica: passes are serialised within the
process, and every action and cleanup push is idempotent, so an overlap
converges, but two replicas do the same work twice and may comment twice on
a pull request. With --leader-elect, run as many as you like: only the
holder of a coordination.k8s.io Lease runs passes; the others serve
/healthz, /readyz and /metrics, drop webhook triggers (the leader's passes
are full passes) and take over when the leader stops renewing. The cluster
is the pod's own (its service account), else --kubeconfig, else
$KUBECONFIG or ~/.kube/config; the identity is $POD_NAME, else the host
name with a random suffix. See docs/serve.md#high-availability.`, e)
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
	statusPage := fs.Bool("status-page", false, "serve the status page at /status on --listen, to bearers of the token in GITGRANT_STATUS_TOKEN")
	statusAddr := fs.String("status-addr", "", "also serve the status page, without a token, on this loopback `address` (such as 127.0.0.1:9091)")
	var lf leaderFlags
	fs.BoolVar(&lf.elect, "leader-elect", false, "run as one of several replicas: only the holder of a Lease runs passes")
	fs.StringVar(&lf.name, "lease-name", "gitgrant", "`name` of the coordination.k8s.io Lease")
	fs.StringVar(&lf.namespace, "lease-namespace", "", "`namespace` of the Lease (default: the pod's, else default)")
	fs.DurationVar(&lf.duration, "lease-duration", 15*time.Second, "how long after the leader's last renewal another replica may take over (whole seconds)")
	fs.DurationVar(&lf.renewDeadline, "renew-deadline", 10*time.Second, "the leader stops acting when it has not renewed its Lease for this `long` (below --lease-duration)")
	fs.DurationVar(&lf.retryPeriod, "retry-period", 2*time.Second, "how often replicas try to renew or take the Lease")
	fs.StringVar(&lf.kubeconfig, "kubeconfig", "", "kubeconfig `file` for leader election (default: in a pod its service account, else $KUBECONFIG or ~/.kube/config)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *listen == "" {
		return usagef("serve: --listen is required (for example --listen :8080)")
	}
	if *resync < 0 {
		return usagef("serve: --resync must not be negative")
	}
	statusToken := e.getenv(envStatusToken)
	if *statusPage && len(statusToken) < 16 {
		return usagef("serve --status-page: set %s to a random token of at least 16 characters (such as: openssl rand -hex 32); the page is served only to requests that bear it", envStatusToken)
	}
	if *statusAddr != "" {
		if err := serve.CheckLoopback(*statusAddr); err != nil {
			return usagef("serve --status-addr: %v", err)
		}
	}
	logger, err := newLogger(e, *logFormat)
	if err != nil {
		return err
	}
	election, err := lf.election(e, logger)
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
	var status *serve.StatusPage
	if *statusPage || *statusAddr != "" {
		status = serve.NewStatusPage(e.clock())
	}
	if !*statusPage {
		statusToken = ""
	}
	if *statusAddr != "" {
		sln, err := net.Listen("tcp", *statusAddr)
		if err != nil {
			ln.Close()
			return &gitgrant.SystemError{System: "network", Op: "listen on " + *statusAddr, Err: err}
		}
		logger.Info("status page", "listen", sln.Addr().String())
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			if err := serve.ServeStatus(sctx, sln, status); err != nil {
				logger.Error("status page listener stopped", "err", err)
			}
		}()
	}
	srv := serve.New(eng, serve.Options{
		Status:        status,
		StatusToken:   statusToken,
		Apply:         engine.ApplyOptions{Cleanup: !*noCleanup, Commit: commitOpts},
		Resync:        *resync,
		WebhookSecret: []byte(secret),
		ShutdownGrace: *grace,
		Election:      election,
		Clock:         e.clock(),
		Logger:        logger,
	})
	err = srv.Run(ctx, ln)
	logger.Info("stopped", "passes", srv.Passes())
	return err
}

// envStatusToken holds the bearer token of --status-page.
const envStatusToken = "GITGRANT_STATUS_TOKEN"

// leaderFlags are serve's leader election settings.
type leaderFlags struct {
	elect                                bool
	name, namespace, kubeconfig          string
	duration, renewDeadline, retryPeriod time.Duration
}

// election is nil without --leader-elect: serve then reconciles alone.
func (f leaderFlags) election(e *env, logger *slog.Logger) (*serve.Election, error) {
	if !f.elect {
		return nil, nil
	}
	cfg, from, err := kubeclient.Resolve(f.kubeconfig, e.getenv, kubeclient.ServiceAccountDir)
	if err != nil {
		return nil, usagef("serve --leader-elect: the Kubernetes cluster that holds the Lease: %v", err)
	}
	namespace := cmp.Or(f.namespace, kubeclient.Namespace(kubeclient.ServiceAccountDir), "default")
	identity := e.getenv("POD_NAME")
	if identity == "" {
		// Two processes on one host must never share an identity: both
		// would think they hold the Lease.
		host, _ := os.Hostname()
		identity = cmp.Or(host, "gitgrant") + "_" + rand.Text()[:8]
	}
	lock, err := serve.LeaseLock(cfg, namespace, f.name, identity)
	if err != nil {
		return nil, usagef("serve: %v", err)
	}
	el := &serve.Election{Lock: lock, LeaseDuration: f.duration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod}
	if err := el.Validate(); err != nil {
		return nil, usagef("serve: %v", err)
	}
	logger.Info("leader election", "lease", namespace+"/"+f.name, "identity", identity, "cluster", from, "lease_duration", f.duration, "renew_deadline", f.renewDeadline, "retry_period", f.retryPeriod)
	return el, nil
}
