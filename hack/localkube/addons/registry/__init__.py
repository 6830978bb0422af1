"""The in-cluster registry: the server, its token auth, the second registry with a password, the docker.io mirror, retention."""
