package google

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/gitgrant/gitgrant/providers/internal/httpapi"
)

// problem reads Google's error body: {"error": {"code", "message",
// "status"}}; its status (NOT_FOUND, ALREADY_EXISTS, ...) is the code.
func problem(body []byte) (string, string) {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	json.Unmarshal(body, &e)
	return e.Error.Status, e.Error.Message
}

// do sends one request to path (relative to the API's base URL, built only
// from validated names) and decodes the JSON answer into out.
func (p *Provider) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	_, err := p.api.Do(ctx, httpapi.Call{Method: method, Path: path, Query: query, Body: in}, out)
	return err
}

// statusOf is the HTTP status and Google's status of an answer.
func statusOf(err error) (int, string) { return httpapi.StatusOf(err) }
