package entra

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// do sends one request and decodes a JSON answer into out. target is
// relative to the Graph root, or an absolute @odata.nextLink.
func (p *Provider) do(ctx context.Context, method, target string, body, out any) error {
	_, err := p.api.Do(ctx, httpapi.Call{Method: method, Path: target, Body: body}, out)
	return err
}

// page is one page of a Graph collection.
type page[T any] struct {
	NextLink string `json:"@odata.nextLink"`
	Value    []T    `json:"value"`
}

// list reads every page of a collection.
func list[T any](ctx context.Context, p *Provider, target string) ([]T, error) {
	var all []T
	for target != "" {
		var pg page[T]
		if err := p.do(ctx, http.MethodGet, target, nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.Value...)
		target = pg.NextLink
	}
	return all, nil
}

func isCode(err error, code string) bool {
	_, got := httpapi.StatusOf(err)
	return got == code
}

// alreadyMember recognises Graph's answer to adding a member twice.
func alreadyMember(err error) bool {
	var se *httpapi.StatusError
	return errors.As(err, &se) && se.Status == http.StatusBadRequest &&
		strings.Contains(se.Message, "One or more added object references already exist")
}
