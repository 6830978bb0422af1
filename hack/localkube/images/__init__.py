"""Container images without Docker or a registry: the OCI writer, the recipes, the base images."""
