//go:build tools

// Package tools pins the Gitea command this module builds, so `go mod tidy` keeps every
// dependency it needs in go.mod and go.sum.
package tools

import (
	_ "gitea.dev"
)
