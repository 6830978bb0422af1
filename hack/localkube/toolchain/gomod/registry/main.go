// registry is the CNCF distribution registry (github.com/distribution/distribution/v3)
// with only what the local cluster uses: the filesystem and in-memory storage drivers,
// htpasswd auth and token auth (per-namespace rights through `shipway registry-token`,
// docs/registry.md). Upstream's cmd/registry also links the S3, GCS and Azure drivers, which
// triple the build for nothing here.
package main

import (
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	// As upstream: the registered commands exit non-zero themselves on failure.
	_ = registry.RootCmd.Execute()
}
