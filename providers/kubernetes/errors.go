package kubernetes

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// classify turns an API error into what the reconciler acts on:
// missing objects are providers.ErrNotFound (someone must create them or
// fix gitgrant.yaml); a refused credential or a missing permission is a
// system error no retry fixes; overload, server errors, timeouts and an
// unreachable server are retryable. what names the call for people.
func (p *Provider) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		// No answer from the API server: refused, timed out, TLS, DNS.
		return providers.Unavailable(p.system(), what, err)
	}
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("provider %s: %s: %v: %w", p.cfg.Name, what, err, providers.ErrNotFound)
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return &gitgrant.SystemError{System: p.system(), Op: what, Err: err}
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Errorf("provider %s: %s: %v: %w", p.cfg.Name, what, err, providers.ErrInvalidName)
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err),
		status.Status().Code >= 500:
		return providers.Unavailable(p.system(), what, err)
	}
	return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
}

func (p *Provider) system() string { return "kubernetes " + p.cfg.Name }
