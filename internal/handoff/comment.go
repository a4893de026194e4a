package handoff

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gitgrant/gitgrant/providers"
)

// Marker starts every hand-off comment; the rest of its first line holds
// the clear-text facts (Notice) as a query string, so that `gitgrant
// credentials` can find and check it.
const Marker = "<!-- gitgrant:credentials "

const (
	armorBegin = "-----BEGIN AGE ENCRYPTED FILE-----"
	armorEnd   = "-----END AGE ENCRYPTED FILE-----"
)

// Notice is a hand-off comment: what anyone who can read the pull request
// sees in clear (the account's name, where it connects, until when, which
// keys can open it), and the sealed secret.
type Notice struct {
	Account  string
	Connect  providers.Connection
	Provider string
	Role     string
	// Requester is the GitHub login the secret is for.
	Requester string
	Until     time.Time
	// Keys are the keys the secret is encrypted to (fingerprints only).
	Keys []Key
	// Sealed is the armored age file Seal returned.
	Sealed string
}

// NewNotice seals p to keys and returns the comment that hands it over.
func NewNotice(p Payload, requester string, keys []string) (Notice, error) {
	sealed, err := Seal(p, keys)
	if err != nil {
		return Notice{}, err
	}
	_, listed, _ := Recipients(keys)
	var used []Key
	for _, k := range listed {
		if k.Skipped == "" {
			used = append(used, k)
		}
	}
	return Notice{Account: p.Account.Name, Connect: p.Account.Connect, Provider: p.Provider, Role: p.Role,
		Requester: requester, Until: p.Until.UTC().Truncate(time.Second), Keys: used, Sealed: sealed}, nil
}

func (n Notice) marker() string {
	v := url.Values{}
	v.Set("v", "1")
	v.Set("account", n.Account)
	v.Set("provider", n.Provider)
	v.Set("role", n.Role)
	v.Set("kind", n.Connect.Kind)
	v.Set("host", n.Connect.Host)
	if n.Connect.Port != 0 {
		v.Set("port", strconv.Itoa(n.Connect.Port))
	}
	if n.Connect.Database != "" {
		v.Set("database", n.Connect.Database)
	}
	v.Set("until", n.Until.UTC().Format(time.RFC3339))
	keys := make([]string, len(n.Keys))
	for i, k := range n.Keys {
		keys[i] = k.Type + " " + k.Fingerprint
	}
	v.Set("keys", strings.Join(keys, ","))
	// QueryEscape leaves no space, "<" or ">": the comment cannot end early.
	return Marker + v.Encode() + " -->"
}

// Markdown is the comment's body.
func (n Notice) Markdown(pr int) string {
	var b strings.Builder
	b.WriteString(n.marker() + "\n")
	fmt.Fprintf(&b, "### Credentials for %s/%s\n\n", n.Provider, n.Role)
	fmt.Fprintf(&b, "@%s, gitgrant created the login **`%s`** on **`%s`** (%s) for this request. It works until **%s**; then it is dropped and its sessions are ended.\n\n",
		n.Requester, n.Account, n.Connect, n.Connect.Kind, n.Until.UTC().Format("2006-01-02 15:04 UTC"))
	keys := make([]string, len(n.Keys))
	for i, k := range n.Keys {
		keys[i] = "`" + k.String() + "`"
	}
	fmt.Fprintf(&b, "Its password is below, encrypted with [age](https://age-encryption.org) to your SSH keys %s: only a holder of one of their private keys can read it. On your machine:\n\n", strings.Join(keys, ", "))
	fmt.Fprintf(&b, "```sh\ngitgrant credentials --pr %d --provider %s\n```\n\n", pr, n.Provider)
	b.WriteString("```\n" + strings.TrimSpace(n.Sealed) + "\n```\n")
	return b.String()
}

// ParseNotice reads a comment gitgrant wrote with Markdown. ok is false
// for any other comment; err says why a hand-off comment is unreadable.
func ParseNotice(body string) (n Notice, ok bool, err error) {
	if !strings.HasPrefix(body, Marker) {
		return Notice{}, false, nil
	}
	line, rest, _ := strings.Cut(body, "\n")
	query, found := strings.CutSuffix(strings.TrimSpace(strings.TrimPrefix(line, Marker)), "-->")
	if !found {
		return Notice{}, true, errors.New("the hand-off comment's first line is cut")
	}
	v, err := url.ParseQuery(strings.TrimSpace(query))
	if err != nil || v.Get("v") != "1" {
		return Notice{}, true, errors.New("the hand-off comment's first line is not in a format this gitgrant reads (upgrade gitgrant)")
	}
	n = Notice{Account: v.Get("account"), Provider: v.Get("provider"), Role: v.Get("role"),
		Connect: providers.Connection{Kind: v.Get("kind"), Host: v.Get("host"), Database: v.Get("database")}}
	if p := v.Get("port"); p != "" {
		if n.Connect.Port, err = strconv.Atoi(p); err != nil {
			return Notice{}, true, fmt.Errorf("the hand-off comment's port %q is not a number", p)
		}
	}
	for _, k := range strings.Split(v.Get("keys"), ",") {
		if typ, fp, ok := strings.Cut(k, " "); ok {
			n.Keys = append(n.Keys, Key{Type: typ, Fingerprint: fp})
		}
	}
	if n.Until, err = time.Parse(time.RFC3339, v.Get("until")); err != nil {
		return Notice{}, true, fmt.Errorf("the hand-off comment's until %q is not a time", v.Get("until"))
	}
	begin := strings.Index(rest, armorBegin)
	end := strings.Index(rest, armorEnd)
	if begin < 0 || end < begin {
		return Notice{}, true, errors.New("the hand-off comment holds no sealed credentials (it was edited?)")
	}
	n.Sealed = rest[begin:end+len(armorEnd)] + "\n"
	return n, true, nil
}

// Check says whether what was decrypted is what the comment shows in
// clear and what the pull request asked for: a comment whose text was
// edited, or a sealed file copied from elsewhere, is refused.
func (n Notice) Check(p Payload, repository string, pr int) error {
	var diffs []string
	if p.Account.Name != n.Account {
		diffs = append(diffs, fmt.Sprintf("account %q, sealed %q", n.Account, p.Account.Name))
	}
	if p.Account.Connect != n.Connect {
		diffs = append(diffs, fmt.Sprintf("connection %s, sealed %s", n.Connect, p.Account.Connect))
	}
	if p.Provider != n.Provider || p.Role != n.Role {
		diffs = append(diffs, fmt.Sprintf("grant %s/%s, sealed %s/%s", n.Provider, n.Role, p.Provider, p.Role))
	}
	if !p.Until.Equal(n.Until) {
		diffs = append(diffs, fmt.Sprintf("until %s, sealed %s", n.Until.Format(time.RFC3339), p.Until.UTC().Format(time.RFC3339)))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the comment does not show what it seals (%s): it was edited; do not use it, and tell the owners of gitgrant", strings.Join(diffs, "; "))
	}
	if !strings.EqualFold(p.Repository, repository) || p.PullRequest != pr {
		return fmt.Errorf("the credentials were sealed for %s#%d, not for %s#%d: the comment was copied from elsewhere; do not use it", p.Repository, p.PullRequest, repository, pr)
	}
	return nil
}
