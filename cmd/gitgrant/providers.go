package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/internal/render"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/schema"
)

const providersSynopsis = "check [--repo DIR] [--output text|json] [--timeout D]"

func runProviders(ctx context.Context, args []string, e *env) error {
	if len(args) > 0 && args[0] == "check" {
		return runProvidersCheck(ctx, args[1:], e)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintf(e.stdout, "Usage: gitgrant providers %s\n\nSubcommands:\n  check   connectivity and permissions of every configured provider\n", providersSynopsis)
		return errHelp
	}
	if len(args) == 0 {
		return usagef("providers: missing subcommand (have: check)")
	}
	return usagef("providers: unknown subcommand %q (have: check)", args[0])
}

func runProvidersCheck(ctx context.Context, args []string, e *env) error {
	fs := newFlags("providers check", "[--repo DIR] [--output text|json] [--timeout D]", `
Check every provider declared in gitgrant.yaml: open it with its settings
(secrets from the environment or files), reach the target system, and
verify what the provider can verify without changing anything: that its
managed roles exist and that gitgrant's account may grant them. Providers
without such a check list the members of each role instead. Nothing is
granted or revoked.

Exit status: 0 every provider is fine, 1 gitgrant.yaml is invalid, 2 usage
error, 3 a provider failed.`, e)
	repo := fs.String("repo", ".", "access repository `DIR` (holds gitgrant.yaml)")
	output := fs.String("output", "text", "`format`: text or json")
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed to each provider")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	format, err := render.ParseFormat(*output, false)
	if err != nil || format == render.GitHub {
		return usagef("providers check: --output must be text or json")
	}
	if *repo, _, err = localRepo(*repo, nil); err != nil {
		return err
	}
	config, _, err := schema.ReadFiles(*repo, nil)
	if err != nil {
		return err
	}
	rep := schema.Validate(config, nil, schema.Options{Now: e.now()})
	if errs, _ := rep.Counts(); errs > 0 || rep.Config == nil {
		return rep.Diagnostics()
	}
	results := checkProviders(ctx, rep.Config, e.registry(), e, *timeout)
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	if err := render.ProviderChecks(e.stdout, format, results, failed == 0); err != nil {
		return &gitgrant.SystemError{System: "output", Op: "write", Err: err}
	}
	if failed > 0 {
		return &gitgrant.SystemError{System: "providers", Op: "check", Err: fmt.Errorf("%d of %d providers failed", failed, len(results))}
	}
	return nil
}

// checkProviders checks every provider at once, each within timeout, and
// returns the results sorted by provider name.
func checkProviders(ctx context.Context, cfg *gitgrant.Config, reg providers.Registry, e *env, timeout time.Duration) []render.ProviderCheck {
	deps := providers.DefaultDeps()
	deps.Getenv = e.getenv
	deps.ReadFile = os.ReadFile
	names := make([]string, 0, len(cfg.Providers))
	for name := range cfg.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	results := make([]render.ProviderCheck, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		pc := cfg.Providers[name]
		if pc.Name == "" {
			pc.Name = name
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			r := render.ProviderCheck{Name: name, Type: pc.Type, Roles: len(pc.Roles), OK: true}
			if err := checkProvider(ctx, pc, reg, deps); err != nil {
				r.OK, r.Error = false, err.Error()
			}
			results[i] = r
		})
	}
	wg.Wait()
	return results
}

// checkProvider opens one provider and runs its Check, or lists every
// role's members when it has none.
func checkProvider(ctx context.Context, pc gitgrant.ProviderConfig, reg providers.Registry, deps providers.Deps) error {
	p, err := reg.Open(ctx, pc, deps)
	if err != nil {
		return err
	}
	defer p.Close()
	if c, ok := p.(providers.Checker); ok {
		return c.Check(ctx)
	}
	roles := make([]string, 0, len(pc.Roles))
	for r := range pc.Roles {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	var errs []error
	for _, role := range roles {
		if _, err := p.Members(ctx, role); err != nil {
			errs = append(errs, fmt.Errorf("role %s: %w", role, err))
		}
	}
	return errors.Join(errs...)
}
