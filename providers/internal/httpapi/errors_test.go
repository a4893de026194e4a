package httpapi

import "testing"

// TestErrorEnvelope: Graph's and Google's error bodies give their code and
// message; anything else gives neither.
func TestErrorEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, code, body, wantCode, wantMessage string }{
		{"graph", "code", `{"error": {"code": "Request_ResourceNotFound", "message": "gone"}}`, "Request_ResourceNotFound", "gone"},
		{"google", "status", `{"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}}`, "NOT_FOUND", "gone"},
		{"oauth error string", "code", `{"error": "invalid_grant"}`, "", ""},
		{"not JSON", "code", `<html>busy</html>`, "", ""},
	}
	for _, tt := range tests {
		code, message := ErrorEnvelope(tt.code)([]byte(tt.body))
		if code != tt.wantCode || message != tt.wantMessage {
			t.Errorf("%s: ErrorEnvelope(%q) = %q, %q; want %q, %q", tt.name, tt.code, code, message, tt.wantCode, tt.wantMessage)
		}
	}
}
