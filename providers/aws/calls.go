package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// callCounter paces and counts every attempt the SDK sends, retries
// included: it sits in the deserialize step, which runs once per attempt.
type callCounter struct {
	n    atomic.Int64
	pace *httpapi.Pacer
}

func (c *callCounter) middleware(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("gitgrantPaceAndCount",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			if c.pace != nil {
				if err := c.pace.Wait(ctx); err != nil {
					return middleware.DeserializeOutput{}, middleware.Metadata{}, err
				}
			}
			c.n.Add(1)
			return next.HandleDeserialize(ctx, in)
		}), middleware.Before)
}

// errorCode is the API error code (ThrottlingException, ...), if any.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// credentialsExpired says the service refused the request's credentials
// as expired: the cache is emptied and the call tried once more.
func credentialsExpired(err error) bool {
	switch errorCode(err) {
	case "ExpiredToken", "ExpiredTokenException", "RequestExpired":
		return true
	}
	return false
}

// invalidator is implemented by aws.CredentialsCache.
type invalidator interface{ Invalidate() }

// call runs one SDK operation; credentials the service calls expired
// (clock skew, a session revoked early) are fetched again, once.
func (p *Provider) call(ctx context.Context, do func() error) error {
	err := do()
	if credentialsExpired(err) {
		if c, ok := p.creds.(invalidator); ok {
			c.Invalidate()
			p.logger.InfoContext(ctx, "aws: credentials refused as expired; fetching new ones")
			err = do()
		}
	}
	return err
}

// wrap turns an SDK error into the errors the reconciler acts on. SDK
// errors name the operation and the request id, never credentials.
func (p *Provider) wrap(what string, err error) error {
	var canceled *smithy.CanceledError
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &canceled) {
		return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		// Transport errors: DNS, refused connections, timeouts, and the
		// SDK giving up after its retries.
		return providers.Unavailable(p.system(), what, err)
	}
	code := apiErr.ErrorCode()
	switch {
	case code == "ResourceNotFoundException":
		return fmt.Errorf("provider %s: %s: %s: %w", p.cfg.Name, what, apiErr.ErrorMessage(), providers.ErrNotFound)
	case code == "ThrottlingException", code == "InternalServerException", code == "ConflictException",
		code == "ServiceUnavailableException", strings.HasPrefix(code, "Throttl"):
		return providers.Unavailable(p.system(), what, err)
	case code == "AccessDeniedException", code == "UnrecognizedClientException", code == "InvalidSignatureException",
		code == "ExpiredTokenException", code == "ExpiredToken", code == "InvalidClientTokenId":
		// A person has to fix the credentials or the policy.
		return &gitgrant.SystemError{System: p.system(), Op: what, Err: err}
	}
	return fmt.Errorf("provider %s: %s: %w", p.cfg.Name, what, err)
}
