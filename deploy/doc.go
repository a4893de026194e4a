// Package deploy holds no code: its tests render the Helm chart in
// helm/gitgrant, check that the plain manifests in manifests/ are that
// chart rendered, and apply every object to a real kube-apiserver
// (internal/testing/testenv/kube) so that a typo in the chart fails CI.
package deploy
