package trust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gitgrant/gitgrant"
)

// history is a main branch in memory: one commit per depth, with the
// policy state after each; blobs are their content.
type history struct {
	commits []string // by depth
	states  []State
	blobs   map[string]string
}

func (h *history) Candidates(context.Context) ([]Candidate, error) {
	var out []Candidate
	prev := State{}
	for d, c := range h.commits {
		s := h.states[d]
		if !s.Equal(prev) {
			parents := []string{}
			if d > 0 {
				parents = append(parents, h.commits[d-1])
			}
			out = append(out, Candidate{Commit: c, Parents: parents, Depth: d, State: s, Before: prev})
		}
		prev = s
	}
	return out, nil
}

func (h *history) Depth(_ context.Context, commit string) (int, bool, error) {
	for d, c := range h.commits {
		if c == commit {
			return d, true, nil
		}
	}
	return 0, false, nil
}

func (h *history) Blob(hash string) ([]byte, error) {
	b, ok := h.blobs[hash]
	if !ok {
		return nil, fmt.Errorf("blob %s: not found", hash)
	}
	return []byte(b), nil
}

// builder writes a history commit by commit.
type builder struct {
	h   *history
	cur State
}

func newHistory() *builder {
	return &builder{h: &history{blobs: map[string]string{}}, cur: State{}}
}

// commit records a commit that sets files (content "" deletes) and
// returns its name.
func (b *builder) commit(name string, files map[string]string) string {
	next := State{}
	for k, v := range b.cur {
		next[k] = v
	}
	for path, content := range files {
		if content == "" {
			delete(next, path)
			continue
		}
		blob := fmt.Sprintf("blob-%d", len(b.h.blobs))
		for k, v := range b.h.blobs {
			if v == content {
				blob = k
			}
		}
		b.h.blobs[blob] = content
		next[path] = blob
	}
	b.cur = next
	b.h.commits = append(b.h.commits, name)
	b.h.states = append(b.h.states, next)
	return name
}

func config(maxDuration string) string {
	return fmt.Sprintf(`version: 1
policy: {max_duration: %s}
identities: {alice: {principals: {db: alice}}}
providers:
  db: {type: postgres, dsn_env: DB_DSN, roles: {ro: {approvals: 1}}}
`, maxDuration)
}

const owners = "/gitgrant.yaml @acme/security\n/requests/db/ @acme/dba\n"

// verifier trusts the commits it is told were approved pull requests and
// counts its calls.
type verifier struct {
	approved map[string]int
	calls    int
	retry    map[string]bool
	seen     []Change
}

func (v *verifier) verify(_ context.Context, ch Change) (Verdict, error) {
	v.calls++
	v.seen = append(v.seen, ch)
	if v.retry[ch.Commit] {
		return Verdict{Retry: true, Reasons: []string{"GitHub has not linked the merge to a pull request yet"}}, nil
	}
	if n, ok := v.approved[ch.Commit]; ok {
		return Verdict{Trusted: true, How: fmt.Sprintf("pull request #%d", n), PullRequest: n}, nil
	}
	return Verdict{Reasons: []string{"reached main without a merged pull request"}}, nil
}

func maxOf(t *testing.T, p Policy) string {
	t.Helper()
	if p.Config == nil {
		t.Fatalf("no config in %+v", p)
	}
	return p.Config.Policy.MaxDuration.String()
}

func TestNoRootTrustsNothing(t *testing.T) {
	t.Parallel()
	b := newHistory()
	head := b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
	r := &Resolver{Source: b.h}
	if _, err := r.At(context.Background(), head); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("At without a root = %v, want ErrNoRoot", err)
	}
}

func TestResolution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type want struct {
		commit, max, configCommit string
		unverified                []string // commits, newest first
		problem                   string
	}
	tests := []struct {
		name     string
		build    func(b *builder) (head string)
		root     string
		approved map[string]int
		want     want
	}{
		{
			name: "the root alone",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				return b.commit("c1", map[string]string{"requests/db/a.yaml": "x"})
			},
			root: "first",
			want: want{commit: "c0", max: "4h", configCommit: "c0"},
		},
		{
			name: "a verified pull request moves the policy on",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				return b.commit("c1", map[string]string{"gitgrant.yaml": config("8h")})
			},
			root: "first", approved: map[string]int{"c1": 7},
			want: want{commit: "c1", max: "8h", configCommit: "c1"},
		},
		{
			name: "a direct push is kept out",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				return b.commit("c1", map[string]string{"gitgrant.yaml": config("1w")})
			},
			root: "first",
			want: want{commit: "c0", max: "4h", configCommit: "c0", unverified: []string{"c1"}},
		},
		{
			name: "a revert to verified content is trusted without a review",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				b.commit("c1", map[string]string{"gitgrant.yaml": config("1w")})
				return b.commit("c2", map[string]string{"gitgrant.yaml": config("4h")})
			},
			root: "first",
			want: want{commit: "c2", max: "4h", configCommit: "c2"},
		},
		{
			name: "an approved change on top of an unverified one does not launder it",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				b.commit("c1", map[string]string{"gitgrant.yaml": config("1w")}) // pushed directly
				return b.commit("c2", map[string]string{".github/CODEOWNERS": owners + "/docs/ @acme/docs\n"})
			},
			root: "first", approved: map[string]int{"c2": 9},
			want: want{commit: "c0", max: "4h", configCommit: "c0", unverified: []string{"c2", "c1"}},
		},
		{
			name: "a verified typo keeps the last valid configuration in force",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				b.commit("c1", map[string]string{"gitgrant.yaml": config("8h")})
				return b.commit("c2", map[string]string{"gitgrant.yaml": "version: 1\npolicy: {max_duraton: 2h}\n"})
			},
			root: "first", approved: map[string]int{"c1": 1, "c2": 2},
			want: want{commit: "c2", max: "8h", configCommit: "c1", problem: "the verified gitgrant.yaml of c2 cannot be used"},
		},
		{
			name: "a root named by commit trusts the policy in force there",
			build: func(b *builder) string {
				b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
				b.commit("c1", map[string]string{"gitgrant.yaml": config("2h")}) // pushed, then adopted as the root
				b.commit("c2", map[string]string{"requests/db/a.yaml": "x"})
				return b.commit("c3", map[string]string{"gitgrant.yaml": config("1w")}) // pushed
			},
			root: "c2",
			want: want{commit: "c1", max: "2h", configCommit: "c1", unverified: []string{"c3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newHistory()
			head := tt.build(b)
			v := &verifier{approved: tt.approved}
			r := &Resolver{Source: b.h, Root: tt.root, Verify: v.verify}
			rep, err := r.At(ctx, head)
			if err != nil {
				t.Fatal(err)
			}
			var unverified []string
			for _, u := range rep.Unverified {
				unverified = append(unverified, u.Commit)
				if len(u.Reasons) == 0 {
					t.Errorf("unverified %s has no reason", u.Commit)
				}
			}
			got := want{commit: rep.Policy.Commit, max: maxOf(t, rep.Policy), configCommit: rep.Policy.ConfigCommit, unverified: unverified}
			if tt.want.problem != "" {
				if !strings.Contains(strings.Join(rep.Policy.Problems, "\n"), tt.want.problem) {
					t.Errorf("problems %q, want one containing %q", rep.Policy.Problems, tt.want.problem)
				}
				got.problem = tt.want.problem
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(rep.Unverified) > 0 && !strings.Contains(rep.Loud(), "is not verified") {
				t.Errorf("Loud() = %q, want it to say the change is not verified", rep.Loud())
			}
			if rep.Policy.Owners == nil || len(rep.Policy.Owners.Owners("gitgrant.yaml")) == 0 {
				t.Errorf("the trusted CODEOWNERS is missing or owns nothing for gitgrant.yaml")
			}
		})
	}
}

// A pull request is judged by the trusted policy at its base: the
// verifier is handed the prior trusted policy, not the raw files.
func TestVerifyGetsThePriorTrustedPolicy(t *testing.T) {
	t.Parallel()
	b := newHistory()
	b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
	b.commit("c1", map[string]string{".github/CODEOWNERS": "/gitgrant.yaml @mallory\n"}) // pushed directly
	b.commit("c2", map[string]string{".github/CODEOWNERS": owners})                      // reverted
	head := b.commit("c3", map[string]string{"gitgrant.yaml": config("8h")})
	v := &verifier{approved: map[string]int{"c3": 4}}
	r := &Resolver{Source: b.h, Root: "first", Verify: v.verify}
	rep, err := r.At(context.Background(), head)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Policy.Commit != "c3" {
		t.Fatalf("policy from %s, want c3", rep.Policy.Commit)
	}
	var c3 *Change
	for i := range v.seen {
		if v.seen[i].Commit == "c3" {
			c3 = &v.seen[i]
		}
	}
	if c3 == nil {
		t.Fatal("c3 was never verified")
	}
	if c3.Prior.Commit != "c2" || !cmp.Equal(c3.Files, []string{gitgrant.ConfigPath}) {
		t.Errorf("c3 verified with prior %s and files %v, want prior c2 (the revert) and gitgrant.yaml", c3.Prior.Commit, c3.Files)
	}
	if got := c3.Prior.Owners.Owners("gitgrant.yaml"); len(got) != 1 || got[0].String() != "@acme/security" {
		t.Errorf("owners of gitgrant.yaml in the prior policy = %v, want @acme/security", got)
	}
}

// Verdicts are memoised, so a steady state asks GitHub nothing; a verdict
// that may still change is asked again.
func TestVerdictsAreMemoised(t *testing.T) {
	t.Parallel()
	b := newHistory()
	b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
	b.commit("c1", map[string]string{"gitgrant.yaml": config("8h")})
	head := b.commit("c2", map[string]string{"gitgrant.yaml": config("2h")})
	v := &verifier{approved: map[string]int{"c1": 1}, retry: map[string]bool{"c2": true}}
	r := &Resolver{Source: b.h, Root: "first", Verify: v.verify}
	for range 3 {
		if _, err := r.At(context.Background(), head); err != nil {
			t.Fatal(err)
		}
	}
	// c1 once; c2 (not yet linked) on every pass.
	if v.calls != 4 {
		t.Errorf("verifier called %d times over three passes, want 4 (c1 once, c2 each pass)", v.calls)
	}
	v.retry = nil
	v.approved["c2"] = 2
	rep, err := r.At(context.Background(), head)
	if err != nil || rep.Policy.Commit != "c2" {
		t.Fatalf("after GitHub linked c2: %+v %v", rep.Policy, err)
	}
}

// Settings of a policy that was never verified are never used, even to
// revoke: a pushed config could send a provider's secret elsewhere.
func TestConfigOfRefusesUnverifiedPolicy(t *testing.T) {
	t.Parallel()
	b := newHistory()
	b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
	head := b.commit("c1", map[string]string{"gitgrant.yaml": config("1w")})
	r := &Resolver{Source: b.h, Root: "first", Verify: (&verifier{}).verify}
	if _, err := r.At(context.Background(), head); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ConfigOf(context.Background(), "c1"); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("ConfigOf(unverified) = %v, want a refusal", err)
	}
	cfg, err := r.ConfigOf(context.Background(), "c0")
	if err != nil || cfg.Policy.MaxDuration.String() != "4h" {
		t.Errorf("ConfigOf(root) = %v, %v", cfg, err)
	}
}

// GitHub down while a policy change waits to be verified: the change is
// not in force this time, the pass goes on with the verified policy before
// it, and the change is asked about again.
func TestVerifyErrorDecidesNothing(t *testing.T) {
	t.Parallel()
	b := newHistory()
	b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
	head := b.commit("c1", map[string]string{"gitgrant.yaml": config("8h")})
	down := true
	calls := 0
	r := &Resolver{Source: b.h, Root: "first", Verify: func(context.Context, Change) (Verdict, error) {
		calls++
		if down {
			return Verdict{}, errors.New("github: 503")
		}
		return Verdict{Trusted: true, How: "pull request #3"}, nil
	}}
	rep, err := r.At(context.Background(), head)
	if err != nil {
		t.Fatalf("At with GitHub down = %v, want the verified policy before the change", err)
	}
	if rep.Policy.Commit != "c0" || len(rep.Unverified) != 1 || !strings.Contains(rep.Unverified[0].Reasons[0], "503") {
		t.Fatalf("with GitHub down: %+v", rep)
	}
	down = false
	if rep, err = r.At(context.Background(), head); err != nil || rep.Policy.Commit != "c1" {
		t.Fatalf("after GitHub is back: %+v %v", rep.Policy, err)
	}
	if calls != 2 {
		t.Errorf("verified %d times, want 2 (the failure is not remembered)", calls)
	}
}

// A change judged while GitHub could not be asked about an earlier one is
// judged against the wrong prior policy; that verdict must not outlive the
// outage. Found by the simulation (internal/sim, seed 10): a verified
// CODEOWNERS change stayed "carries content that was never verified" for
// the life of the process, and a direct push restoring an older policy
// stayed trusted as a "restoration" after the change it undid verified.
func TestVerdictOnAnUnknownPriorIsNotMemoised(t *testing.T) {
	t.Parallel()
	const looser = "/gitgrant.yaml @acme/security\n/requests/db/ @acme/dba @acme/interns\n"
	tests := []struct {
		name     string
		build    func(b *builder) (head string, approved map[string]int)
		want     string   // policy in force once GitHub answers
		untrusts []string // unverified then
	}{
		{
			name: "verified change after an unknown one",
			build: func(b *builder) (string, map[string]int) {
				b.commit("c1", map[string]string{"gitgrant.yaml": config("8h")})
				return b.commit("c2", map[string]string{".github/CODEOWNERS": looser}), map[string]int{"c1": 1, "c2": 2}
			},
			want: "c2",
		},
		{
			name: "direct push restoring what an unknown change replaced",
			build: func(b *builder) (string, map[string]int) {
				b.commit("c1", map[string]string{".github/CODEOWNERS": looser})
				return b.commit("c2", map[string]string{".github/CODEOWNERS": owners}), map[string]int{"c1": 1}
			},
			want:     "c1",
			untrusts: []string{"c2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newHistory()
			b.commit("c0", map[string]string{"gitgrant.yaml": config("4h"), ".github/CODEOWNERS": owners})
			head, approved := tt.build(b)
			down := true
			v := &verifier{approved: approved}
			r := &Resolver{Source: b.h, Root: "first", Verify: func(ctx context.Context, ch Change) (Verdict, error) {
				if down && ch.Commit == "c1" {
					return Verdict{}, errors.New("github: 503")
				}
				return v.verify(ctx, ch)
			}}
			if _, err := r.At(context.Background(), head); err != nil {
				t.Fatalf("with GitHub down: %v", err)
			}
			down = false
			rep, err := r.At(context.Background(), head)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Policy.Commit != tt.want {
				t.Errorf("policy in force %s (%s), want %s; unverified %+v", rep.Policy.Commit, rep.Policy.How, tt.want, rep.Unverified)
			}
			var got []string
			for _, u := range rep.Unverified {
				got = append(got, u.Commit)
			}
			if diff := cmp.Diff(tt.untrusts, got); diff != "" {
				t.Errorf("unverified (-want +got):\n%s", diff)
			}
		})
	}
}
