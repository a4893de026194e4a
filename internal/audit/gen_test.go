package audit

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gitgrant/gitgrant/internal/testing/historygen"
)

// historySpec describes a generated access repository history.
type historySpec struct {
	Commits   int // total commits, side-branch commits included
	Requests  int // request files that come and go
	Providers int
}

// generateHistory writes a history with git fast-import: requests merged
// as merge commits, squash commits and direct pushes, cleaned up by
// commits with gitgrant trailers, revoked early by people, interleaved
// with commits that touch other files. It is deterministic, so a cached
// repository can be reused across runs.
func generateHistory(w io.Writer, spec historySpec) error {
	s := historygen.NewStream(w, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), 7*time.Minute)
	config := "version: 1\nproviders:\n"
	for p := range spec.Providers {
		config += fmt.Sprintf("  db%02d:\n    type: postgres\n    roles:\n      readonly: {approvals: 1}\n", p)
	}
	main := s.Commit("refs/heads/main", "admin", "Initial access repository", nil, historygen.File("gitgrant.yaml", config), historygen.File("README.md", "access\n"))

	type active struct {
		path, requester, grant string
		pr                     int
		merged                 time.Time
	}
	var open []active
	otherPerRequest := max(0, (spec.Commits-1-3*spec.Requests)/spec.Requests)
	pr := 0
	for i := range spec.Requests {
		user := fmt.Sprintf("user%05d", i)
		provider := fmt.Sprintf("db%02d", i%spec.Providers)
		p := fmt.Sprintf("requests/%s/%s-readonly.yaml", provider, user)
		body := historygen.File(p, fmt.Sprintf("requester: %s\ngrants:\n  - provider: %s\n    role: readonly\nduration: 4h\nreason: Investigate ticket INC-%d\n", user, provider, i))
		pr++
		switch i % 3 {
		case 0: // merge commit of a one-commit pull request branch
			head := s.Commit("refs/heads/pr", user, "Request readonly on "+provider, []int{main}, body)
			main = s.Commit("refs/heads/main", "GitHub", fmt.Sprintf("Merge pull request #%d from %s/request\n\nRequest readonly on %s", pr, user, provider), []int{main, head}, body)
		case 1: // squash merge
			main = s.Commit("refs/heads/main", user, fmt.Sprintf("Request readonly on %s (#%d)", provider, pr), []int{main}, body)
		default: // rebase merge or direct push
			main = s.Commit("refs/heads/main", user, "Request readonly on "+provider, []int{main}, body)
		}
		open = append(open, active{path: p, requester: user, grant: provider + "/readonly", pr: pr, merged: s.Now()})
		for j := range otherPerRequest {
			main = s.Commit("refs/heads/main", "dev", fmt.Sprintf("Update notes %d.%d", i, j), []int{main}, historygen.File(fmt.Sprintf("notes/%02d.md", j%16), fmt.Sprintf("note %d %d\n", i, j)))
		}
		// Keep about 150 requests active: the oldest leave, by cleanup or
		// by an early "I'm done" deletion.
		for len(open) > 150 {
			a := open[0]
			open = open[1:]
			if a.pr%5 == 0 {
				main = s.Commit("refs/heads/main", a.requester, "Done with "+a.grant, []int{main}, historygen.Delete(a.path))
				continue
			}
			msg := fmt.Sprintf("gitgrant: remove 1 expired request\n\nGitgrant-Request: %s\nGitgrant-Requester: %s\nGitgrant-Grant: %s\nGitgrant-Approved-By: reviewer\nGitgrant-Granted-At: %s\nGitgrant-Expired-At: %s\nGitgrant-Pull-Request: %d\n",
				a.path, a.requester, a.grant, a.merged.Format(time.RFC3339), a.merged.Add(4*time.Hour).Format(time.RFC3339), a.pr)
			main = s.Commit("refs/heads/main", "gitgrant", msg, []int{main}, historygen.Delete(a.path))
		}
	}
	for s.Commits < spec.Commits {
		main = s.Commit("refs/heads/main", "dev", fmt.Sprintf("Pad %d", s.Commits), []int{main}, historygen.File("notes/pad.md", fmt.Sprintf("%d\n", s.Commits)))
	}
	s.Drop("refs/heads/pr")
	return s.Flush()
}

// generatedRepo returns a bare repository holding the generated history,
// built once and cached (historygen.CacheDir).
func generatedRepo(tb testing.TB, spec historySpec) string {
	tb.Helper()
	name := fmt.Sprintf("history-c%d-r%d-p%d-v2.git", spec.Commits, spec.Requests, spec.Providers)
	return historygen.Cached(tb, historygen.CacheDir(tb), name, func(dir string) {
		historygen.Import(tb, dir, func(w io.Writer) error { return generateHistory(w, spec) })
		// Repack as a server would hold it, so that both tools read the
		// same deltified pack.
		historygen.Repack(tb, dir)
	})
}
