package google

import (
	"context"
	"net/url"

	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// do sends one request to path (relative to the API's base URL, built only
// from validated names) and decodes the JSON answer into out.
func (p *Provider) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	_, err := p.api.Do(ctx, httpapi.Call{Method: method, Path: path, Query: query, Body: in}, out)
	return err
}

// statusOf is the HTTP status and Google's status of an answer.
func statusOf(err error) (int, string) { return httpapi.StatusOf(err) }
