package gitgrant

import "testing"

func TestRequestPaths(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path    string
		request bool
	}{
		{"requests/orders-db/alice.yaml", true},
		{"requests/orders-db/alice.YML", true},
		{"requests/orders-db/team/alice.yaml", true},
		{"requests/alice.yaml", true}, // a request in the wrong place
		{"requests/README.md", false},
		{"requests/orders-db/README.md", false},
		{"requests/orders-db/HOWTO.MD", false},
		{"requests/.gitkeep", false},
		{"requests/orders-db/.gitkeep", false},
		{"requests/orders-db/.alice.yaml", false},
		{"requests/orders-db/.old/alice.yaml", true}, // only the file's own name counts
		{"requests/orders-db/.yaml", false},
		{"requests/orders-db/notes.txt", false},
		{"requests/orders-db/alice.yaml.bak", false},
		{"requests/orders-db/alice.json", false},
		{"gitgrant.yaml", false},
		{"docs/requests/alice.yaml", false},
		{"requests", false},
	} {
		if got := IsRequestPath(tt.path); got != tt.request {
			t.Errorf("IsRequestPath(%q) = %v, want %v", tt.path, got, tt.request)
		}
	}
}
