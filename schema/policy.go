package schema

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant"
)

// Policy applies the static policy of one config to requests. Build it
// once per config: it compiles the ticket pattern and indexes logins.
type Policy struct {
	cfg    *gitgrant.Config
	ticket *regexp.Regexp
	// Now is the time "in the past" is judged against.
	now time.Time
	// committed: the requests are already on a branch, so one whose window
	// ended is the reconciler's to revoke and clean up, not a mistake.
	committed bool
}

// NewPolicy prepares policy checks for cfg, which must have loaded
// without errors.
func NewPolicy(cfg *gitgrant.Config, now time.Time) *Policy {
	c := &Policy{cfg: cfg, now: now}
	if p := cfg.Policy.TicketPattern; p != "" {
		c.ticket = regexp.MustCompile(`^(?:` + p + `)$`) // LoadConfig rejected patterns that do not compile
	}
	return c
}

// Check returns every static policy violation of req: what can be judged
// from the files alone, before any approval is looked at. Time-based rules
// are judged at the checker's time.
func (c *Policy) Check(req *gitgrant.Request) gitgrant.Diagnostics {
	return c.CheckAt(req, c.now)
}

// CheckAt is Check with time-based rules (an expiry in the past, a window
// measured from the merge) judged at now: for a request already on the main
// branch, the time it got there.
func (c *Policy) CheckAt(req *gitgrant.Request, now time.Time) gitgrant.Diagnostics {
	var out gitgrant.Diagnostics
	add := func(sev gitgrant.Severity, field, msg, hint string) {
		out = append(out, gitgrant.Diagnostic{Position: req.Pos(field), Severity: sev, Field: field, Message: msg, Hint: hint})
	}
	cfg := c.cfg
	folder := gitgrant.ProviderFolder(req.Path)

	for i, g := range req.Grants {
		pf, rf := fmt.Sprintf("grants.%d.provider", i), fmt.Sprintf("grants.%d.role", i)
		if folder != "" && g.Provider != folder {
			add(gitgrant.SeverityError, pf, fmt.Sprintf("provider %q does not match the folder requests/%s/", g.Provider, folder),
				fmt.Sprintf("move the file to requests/%s/, or ask for a %s role: the folder decides who must approve", g.Provider, folder))
		}
		p, ok := cfg.Providers[g.Provider]
		if !ok {
			add(gitgrant.SeverityError, pf, fmt.Sprintf("provider %q is not declared in gitgrant.yaml", g.Provider), didYouMean(g.Provider, sortedKeys(cfg.Providers), "declared providers"))
			continue
		}
		_, ok = p.Roles[g.Role]
		if !ok {
			add(gitgrant.SeverityError, rf, fmt.Sprintf("role %q is not declared by provider %s", g.Role, g.Provider), didYouMean(g.Role, sortedKeys(p.Roles), "its roles"))
			continue
		}
		c.checkLength(req, g, now, add)
	}

	c.checkWho(req, add)

	// The reason rules are judged here rather than when the file is read,
	// so that the audit trail, which reads old files with LoadRequest, still
	// sees requests granted before the rules as they were.
	switch least := cfg.Policy.MinReasonLength; {
	case !gitgrant.ReasonHasWords(req.Reason):
		add(gitgrant.SeverityError, "reason", "reason has no words: it holds only spaces or punctuation", reasonHint)
	case least > 0 && gitgrant.ReasonLength(req.Reason) < least:
		add(gitgrant.SeverityError, "reason", fmt.Sprintf("reason is %d characters; policy.min_reason_length asks for at least %d", gitgrant.ReasonLength(req.Reason), least), reasonHint)
	}
	if c.ticket != nil {
		switch {
		case req.Ticket == "":
			add(gitgrant.SeverityError, "ticket", "a ticket is required by policy", fmt.Sprintf("add ticket: matching %s", cfg.Policy.TicketPattern))
		case !c.ticket.MatchString(req.Ticket):
			add(gitgrant.SeverityError, "ticket", fmt.Sprintf("ticket %q does not match the policy pattern %s", req.Ticket, cfg.Policy.TicketPattern), "use your tracker's reference, such as INC-1234")
		}
	}
	if !req.Expires.IsZero() && !req.Expires.After(now) {
		if c.committed {
			add(gitgrant.SeverityWarning, "expires", fmt.Sprintf("expired at %s", req.Expires.Format(time.RFC3339)), "the reconciler revokes it and removes this file in a cleanup commit")
		} else {
			add(gitgrant.SeverityError, "expires", fmt.Sprintf("expires %s is in the past", req.Expires.Format(time.RFC3339)), "set a later time, or use duration:")
		}
	}
	return out
}

// reasonHint is what to do about a reason that says too little.
const reasonHint = "say why you need the access, for whom or what, such as: Repair stuck orders after INC-1234"

// checkLength compares the requested window with the caps of one grant.
// With `expires`, the window starts at merge, so it is measured from starts
// when set, else from now (the earliest the merge can be).
func (c *Policy) checkLength(req *gitgrant.Request, g gitgrant.GrantRef, now time.Time, add func(gitgrant.Severity, string, string, string)) {
	limit := c.cfg.GrantMaxDuration(req, g)
	if limit == 0 {
		return
	}
	if req.Duration > 0 {
		if req.Duration > limit {
			add(gitgrant.SeverityError, "duration", fmt.Sprintf("duration %s exceeds the %s maximum of %s/%s%s", req.Duration, limit, g.Provider, g.Role, emergencyNote(req)),
				fmt.Sprintf("ask for %s or less; file a new request to extend later", limit))
		}
		return
	}
	from, what := req.Starts, "starts"
	if from.IsZero() {
		from, what = now, "now"
	}
	if length := gitgrant.Duration(req.Expires.Sub(from)); length > limit {
		add(gitgrant.SeverityError, "expires", fmt.Sprintf("expires is %s after %s, over the %s maximum of %s/%s%s", length, what, limit, g.Provider, g.Role, emergencyNote(req)),
			fmt.Sprintf("choose an expiry within %s, or use duration: %s", limit, limit))
	}
}

func emergencyNote(req *gitgrant.Request) string {
	if req.Emergency {
		return " for emergencies"
	}
	return ""
}

// checkWho covers requester, subject and emergency use.
func (c *Policy) checkWho(req *gitgrant.Request, add func(gitgrant.Severity, string, string, string)) {
	cfg := c.cfg
	if _, _, ok := cfg.Identity(req.Requester); !ok {
		add(gitgrant.SeverityError, "requester", fmt.Sprintf("requester %q is not in identities", req.Requester),
			didYouMean(req.Requester, sortedKeys(cfg.Identities), "an admin adds people to identities in gitgrant.yaml; known logins"))
	}
	benField := "requester"
	if req.Subject != "" && !strings.EqualFold(req.Subject, req.Requester) {
		benField = "subject"
		if !cfg.Policy.AllowOnBehalf {
			add(gitgrant.SeverityError, "subject", "requesting on behalf of someone else is not allowed by policy",
				"remove subject: and let the person who needs access file the request, or set policy.allow_on_behalf")
		}
		if _, _, ok := cfg.Identity(req.Subject); !ok {
			add(gitgrant.SeverityError, "subject", fmt.Sprintf("subject %q is not in identities", req.Subject),
				didYouMean(req.Subject, sortedKeys(cfg.Identities), "known identities"))
			benField = ""
		}
	}
	if benField != "" {
		if key, id, ok := cfg.Identity(req.Beneficiary()); ok {
			for i, g := range req.Grants {
				pc, declared := cfg.Providers[g.Provider]
				if !declared || pc.IsEphemeral(g.Role) {
					continue // an ephemeral role's login is made for the request
				}
				if cfg.PrincipalOf(id, g.Provider) == "" {
					add(gitgrant.SeverityError, fmt.Sprintf("grants.%d.provider", i), fmt.Sprintf("%s has no principal on %s", key, g.Provider),
						fmt.Sprintf("an admin adds identities.%s.principals.%s in gitgrant.yaml", key, g.Provider))
				}
			}
		}
	}
	if req.Emergency {
		for i, g := range req.Grants {
			if pc, ok := cfg.Providers[g.Provider]; ok && pc.IsEphemeral(g.Role) {
				// The secret is handed over on the request's pull request,
				// and a break-glass push has none: every pass would make
				// the account and drop it again.
				add(gitgrant.SeverityError, fmt.Sprintf("grants.%d.role", i), fmt.Sprintf("%s/%s makes ephemeral accounts, which break-glass cannot hand over (there is no pull request to deliver the credentials on)", g.Provider, g.Role),
					"for an emergency, ask for a role that grants to your own login; or remove emergency: true and open a pull request")
			}
		}
		members := cfg.Policy.BreakGlass.Members
		switch {
		case containsFold(members, req.Requester):
		case hasTeam(members):
			add(gitgrant.SeverityWarning, "emergency", fmt.Sprintf("%s is not listed by login in policy.break_glass.members; team membership is verified at reconcile", req.Requester), "")
		default:
			add(gitgrant.SeverityError, "emergency", fmt.Sprintf("%s is not a break-glass member", req.Requester),
				"remove emergency: true and get the request approved; break-glass members are listed in policy.break_glass.members")
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func didYouMean(got string, known []string, label string) string {
	if s := suggest(got, known); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	if len(known) > 12 {
		known = append(known[:12:12], "...")
	}
	return label + ": " + strings.Join(known, ", ")
}
