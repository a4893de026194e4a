// Package all wires every provider type of this build into one registry,
// for the command. Tests build smaller registries of their own.
package all

import (
	"github.com/gitgrant/gitgrant/providers"
	"github.com/gitgrant/gitgrant/providers/aws"
	"github.com/gitgrant/gitgrant/providers/entra"
	"github.com/gitgrant/gitgrant/providers/exec"
	"github.com/gitgrant/gitgrant/providers/githubteam"
	"github.com/gitgrant/gitgrant/providers/google"
	"github.com/gitgrant/gitgrant/providers/kubernetes"
	"github.com/gitgrant/gitgrant/providers/ldap"
	"github.com/gitgrant/gitgrant/providers/mysql"
	"github.com/gitgrant/gitgrant/providers/okta"
	"github.com/gitgrant/gitgrant/providers/postgres"
)

// Registry returns the factories of every provider type, keyed by the
// `type:` that selects it in gitgrant.yaml. One line per type.
func Registry() providers.Registry {
	return providers.Registry{
		postgres.Type:   postgres.Open,
		mysql.Type:      mysql.Open,
		exec.Type:       exec.Open,
		ldap.Type:       ldap.Open,
		githubteam.Type: githubteam.Open,
		okta.Type:       okta.Open,
		entra.Type:      entra.Open,
		google.Type:     google.Open,
		aws.Type:        aws.Open,
		kubernetes.Type: kubernetes.Open,
	}
}
