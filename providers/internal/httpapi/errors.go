package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gitgrant/gitgrant"
	"github.com/gitgrant/gitgrant/providers"
)

// StatusError is an answer other than 2xx, with the error code and
// message the API's error body gave.
type StatusError struct {
	Status  int
	Code    string
	Message string
}

func (e *StatusError) Error() string { return describeAnswer(e.Status, e.Code, e.Message) }

// ErrorEnvelope is a Config.Problem for the error body Microsoft Graph
// and Google's APIs both answer with, {"error": {"message": "...", ...}};
// code names the member of "error" that holds the error's code: "code"
// for Graph, "status" for Google (whose "code" is the HTTP status again).
func ErrorEnvelope(code string) func(body []byte) (string, string) {
	return func(body []byte) (string, string) {
		var e struct {
			Error map[string]any `json:"error"`
		}
		json.Unmarshal(body, &e)
		c, _ := e.Error[code].(string)
		message, _ := e.Error["message"].(string)
		return c, message
	}
}

// describeAnswer says what an HTTP answer was: "HTTP 404 CODE: message".
func describeAnswer(status int, code, message string) string {
	s := fmt.Sprintf("HTTP %d", status)
	if code != "" {
		s += " " + code
	}
	if message != "" {
		s += ": " + message
	}
	return s
}

// StatusOf returns the HTTP status and the API's error code of err, when
// it is an answer; 0 and "" otherwise.
func StatusOf(err error) (int, string) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status, se.Code
	}
	return 0, ""
}

// IsStatus says whether err is an answer with the given HTTP status.
func IsStatus(err error, status int) bool {
	got, _ := StatusOf(err)
	return got == status
}

// Gone is err, unless the answer says that what a call was to remove is
// not there (404): for a removal, that is success.
func Gone(err error) error {
	if IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// Classify turns an error of a call into the errors the reconciler acts
// on; system is the provider's type and name, what names the call:
//
//   - errors the provider already judged (a SystemError, ErrNotFound,
//     ErrInvalidName) and cancellation keep their meaning, with context;
//   - a rate limit not waited out is retryable;
//   - a token that could not be had is a system error, retryable when the
//     token endpoint failed on its side;
//   - an answer is classified by its status (providers.FromHTTPStatus);
//   - anything else did not reach the API (DNS, refused connections,
//     timeouts): retryable.
func Classify(system, provider, what string, err error) error {
	var sys *gitgrant.SystemError
	var limited *RateLimited
	var token *TokenError
	var status *StatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &sys), errors.Is(err, providers.ErrNotFound), errors.Is(err, providers.ErrInvalidName),
		errors.Is(err, context.Canceled):
		return fmt.Errorf("provider %s: %s: %w", provider, what, err)
	case errors.As(err, &limited):
		return providers.Unavailable(system, what, err)
	case errors.As(err, &token):
		return &gitgrant.SystemError{System: system, Op: what, Err: err, Retryable: token.Retryable()}
	case errors.As(err, &status):
		return providers.FromHTTPStatus(system, provider, what, status.Status, err)
	}
	return providers.Unavailable(system, what, err)
}
