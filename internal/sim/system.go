package sim

import (
	"time"

	"github.com/gitgrant/gitgrant/providers/fake"
)

// system is a provider's target system as the simulation sees it: who
// holds a role (the ground truth the invariants read), every call the
// reconciler made, and a way to grant by hand.
type system interface {
	// holders are the principals holding role now, as the simulation names
	// people.
	holders(role string) []string
	// calls are the calls the reconciler made so far, in order.
	calls() []fake.Call
	// drift grants role to who out of band.
	drift(role string, who []string)
}

// fakeSystem is the in-memory provider: it keeps its own record of calls.
type fakeSystem struct{ *fake.Provider }

func (f fakeSystem) holders(role string) []string { return f.Holders(role) }

func (f fakeSystem) calls() []fake.Call { return f.Calls() }

func (f fakeSystem) drift(role string, who []string) {
	held := map[string]time.Time{}
	for _, pr := range f.Holders(role) {
		held[pr] = time.Time{}
	}
	for _, pr := range who {
		held[pr] = time.Time{}
	}
	f.Set(role, held)
}
