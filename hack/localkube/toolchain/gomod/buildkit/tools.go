//go:build tools

// Package tools pins the BuildKit commands this module builds, so `go mod tidy` keeps
// every dependency they need in go.mod and go.sum.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
	_ "github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend"
)
