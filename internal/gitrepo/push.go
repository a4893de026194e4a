// Pushing to the remote: never forced but for gitgrant's own cleanup
// branch, and a refusal explained in words that say what to change.

package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// pushRef is the local reference a commit is pushed from; go-git pushes
// references, not bare hashes, and no branch of the user's is touched.
const pushRef = plumbing.ReferenceName("refs/gitgrant/push")

// push sends commit to the remote's ref without forcing, then records it
// as the remote tracking branch.
func (r *Repo) push(ctx context.Context, commit plumbing.Hash, dst plumbing.ReferenceName) error {
	return r.pushRef(ctx, commit, dst, false)
}

// pushRef is push, forcing when asked: only ever for gitgrant's own
// cleanup branch, never for main or the notes.
func (r *Repo) pushRef(ctx context.Context, commit plumbing.Hash, dst plumbing.ReferenceName, force bool) error {
	if err := r.git.Storer.SetReference(plumbing.NewHashReference(pushRef, commit)); err != nil {
		return err
	}
	spec := config.RefSpec(pushRef.String() + ":" + dst.String())
	if force {
		spec = "+" + spec
	}
	auth, err := r.credentials()
	if err != nil {
		return err
	}
	err = r.git.PushContext(ctx, &git.PushOptions{RemoteName: remoteName, RefSpecs: []config.RefSpec{spec}, Auth: auth})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if isNonFastForward(err) {
			return err
		}
		return fmt.Errorf("%w: %s", err, r.refusalAdvice(dst, err))
	}
	if dst.IsBranch() {
		tracking := plumbing.NewRemoteReferenceName(remoteName, dst.Short())
		return r.git.Storer.SetReference(plumbing.NewHashReference(tracking, commit))
	}
	return nil
}

// refusalAdvice says what to change when the remote refused a push for a
// reason other than a lost race, which retrying never fixes: a protected
// branch's hook ("pre-receive hook declined", GitHub's GH006), or a token
// without the right to push.
func (r *Repo) refusalAdvice(dst plumbing.ReferenceName, err error) string {
	s := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, transport.ErrAuthorizationFailed), errors.Is(err, transport.ErrAuthenticationRequired),
		strings.Contains(s, "permission") || strings.Contains(s, "403"):
		return fmt.Sprintf("the credentials cannot push to %s: give gitgrant's token or GitHub App contents: write on the access repository", dst.Short())
	case dst == plumbing.NewBranchReferenceName(r.branch):
		return fmt.Sprintf("the remote refused gitgrant's cleanup commit on %s, which is how a protected branch answers a direct push: "+
			"set `cleanup.mode: pull-request` in gitgrant.yaml (gitgrant then opens a pull request that removes the expired files), "+
			"or let gitgrant's GitHub App bypass the protection of %s", r.branch, r.branch)
	case dst == NotesRef:
		return fmt.Sprintf("the remote refused %s, where gitgrant keeps its ledger: exempt that ref from the rules (rulesets) that cover it, for gitgrant's token or GitHub App", NotesRef)
	}
	return fmt.Sprintf("the remote refused the push to %s: let gitgrant's token or GitHub App push there", dst)
}

// isNonFastForward tells a lost race (someone pushed first) from other
// rejections such as a protected branch or a hook, which retrying will not fix.
func isNonFastForward(err error) bool {
	s := err.Error()
	for _, m := range []string{"non-fast-forward", "fetch first", "stale info", "failed to lock", "cannot lock ref", "failed to update ref"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
