package ghapi_test

import (
	"github.com/gitgrant/gitgrant/internal/approval"
	"github.com/gitgrant/gitgrant/internal/ghapi"
)

// The consumers declare the interfaces they need; ghapi satisfies them
// without importing them.
var _ approval.Repository = (*ghapi.Client)(nil)
