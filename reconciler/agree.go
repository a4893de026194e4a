package reconciler

import (
	"fmt"

	"github.com/gitgrant/gitgrant"
)

// policy is a config a request must also hold under, with the words that
// name it in a reason.
type policy struct {
	cfg   *gitgrant.Config
	where string
}

// others are the trusted configs besides the one in force now that the
// request must hold under (rule 1); a nil or repeated one adds nothing.
func (s Source) others(now *gitgrant.Config) []policy {
	var out []policy
	for _, p := range []policy{{s.Base, "in the policy at the pull request's base"}, {s.MergedOnto, "in the policy at the commit it was merged onto"}} {
		if p.cfg == nil || p.cfg == now || (len(out) > 0 && out[0].cfg == p.cfg) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// disagreements lists how o maps grant g of login's request differently
// from now, where it maps to principal. Each reason says what differs and
// what to do: the request was approved for what the older policy meant,
// so it cannot stand for something else now.
func disagreements(now *gitgrant.Config, o policy, login string, g gitgrant.GrantRef, principal string) []string {
	const fix = ": file a new request"
	pNow := now.Providers[g.Provider]
	p, ok := o.cfg.Providers[g.Provider]
	if !ok {
		return []string{fmt.Sprintf("provider %s is not declared %s%s", g.Provider, o.where, fix)}
	}
	var out []string
	if p.Type != pNow.Type {
		out = append(out, fmt.Sprintf("provider %s is of type %s %s and %s now%s", g.Provider, p.Type, o.where, pNow.Type, fix))
	}
	if _, ok := p.Roles[g.Role]; !ok {
		out = append(out, fmt.Sprintf("role %s/%s is not declared %s%s", g.Provider, g.Role, o.where, fix))
	} else if was, is := p.RoleTarget(g.Role), pNow.RoleTarget(g.Role); was != is {
		out = append(out, fmt.Sprintf("role %s/%s targets %s %s and %s now%s", g.Provider, g.Role, was, o.where, is, fix))
	}
	_, id, known := o.cfg.Identity(login)
	switch was := o.cfg.GrantPrincipal(login, id, g.Provider, g.Role); {
	case !known:
		out = append(out, fmt.Sprintf("%s is not in identities %s%s", login, o.where, fix))
	case was == "":
		out = append(out, fmt.Sprintf("%s has no principal on %s %s%s", login, g.Provider, o.where, fix))
	case was != principal:
		out = append(out, fmt.Sprintf("the principal of %s on %s is %s %s and %s now%s", login, g.Provider, was, o.where, principal, fix))
	}
	return out
}

// tightestCap is the shortest cap any of the policies puts on grant g of
// req: the stricter wins. Zero: none has a cap.
func tightestCap(now *gitgrant.Config, others []policy, req *gitgrant.Request, g gitgrant.GrantRef) gitgrant.Duration {
	limit := now.GrantMaxDuration(req, g)
	for _, o := range others {
		if c := o.cfg.GrantMaxDuration(req, g); c > 0 && (limit == 0 || c < limit) {
			limit = c
		}
	}
	return limit
}

// dedupe drops repeated reasons (one per grant of the same provider),
// keeping the first of each in order.
func dedupe(reasons []string) []string {
	seen := map[string]bool{}
	out := reasons[:0:0]
	for _, r := range reasons {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
