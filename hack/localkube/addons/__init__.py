"""What runs in the cluster besides the node: DNS, the registries, BuildKit, Gitea, kwok, git."""
