package main

import (
	"fmt"

	"github.com/gitgrant/gitgrant/internal/engine"
	"github.com/gitgrant/gitgrant/internal/render"
)

// policyNotice tells a person, on stderr, what a pass says about the
// policy in force (rule 13): a policy change on main that is not
// verified, a newer verified gitgrant.yaml that is invalid, or no verified
// policy at all. The last is invalid input (exit 1), after the pass did
// what it still could: revoke access whose recorded window ended.
func policyNotice(e *env, pass *engine.Pass) error {
	if loud := pass.Plan.Policy.Loud(); loud != "" && pass.PolicyErr == nil {
		fmt.Fprintf(e.stderr, "gitgrant: warning: %s\n", loud)
	}
	if len(pass.MainConfig) > 0 {
		fmt.Fprintln(e.stderr, "gitgrant: gitgrant.yaml on main is not the verified one in force; its problems:")
		render.TextDiagnostics(e.stderr, pass.MainConfig)
	}
	if pass.PolicyErr == nil {
		return nil
	}
	fmt.Fprintf(e.stderr, "gitgrant: %v\n", pass.PolicyErr)
	if pass.Report.ConfigFile().Diagnostics.HasErrors() {
		render.TextDiagnostics(e.stderr, pass.Report.ConfigFile().Diagnostics)
	}
	return errInvalid
}
