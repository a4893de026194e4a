package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// wrap turns an API error into the errors the reconciler acts on.
func (p *Provider) wrap(op, role, gid string, err error) error {
	what := fmt.Sprintf("%s %s (group %s)", op, role, gid)
	if role == "" {
		what = op + " the tenant"
	}
	var limited *throttled
	var token *tokenFailure
	var ge *graphError
	var sys *gitgrant.SystemError
	switch {
	case errors.As(err, &sys), errors.Is(err, providers.ErrNotFound) && !isStatus(err, http.StatusNotFound), errors.Is(err, providers.ErrInvalidName):
		return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
	case errors.As(err, &limited):
		return providers.Unavailable(p.system(), what, err)
	case errors.As(err, &token):
		return &gitgrant.SystemError{System: p.system(), Op: what, Err: err, Retryable: token.retryable()}
	case errors.As(err, &ge):
		return providers.FromHTTPStatus(p.system(), p.cfg.Name, what, ge.status, err)
	}
	// Transport errors: DNS, refused connections, timeouts.
	return providers.Unavailable(p.system(), what, err)
}

func (p *Provider) system() string { return "entra " + p.cfg.Name }
