"""What builds the cluster's binaries: the host's packages, Go, and the Go builds into the cache."""
