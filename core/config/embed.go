// Package config embeds the generated manifests (CRDs, RBAC, webhook configuration) so the
// binaries and the tests install exactly what `make manifests` produced.
package config

import "embed"

// CRDs holds the CustomResourceDefinitions, one YAML file each.
//
//go:embed crd/*.yaml
var CRDs embed.FS
