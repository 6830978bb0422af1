#!/usr/bin/env bash
# write-dockercfg.sh PATH: the registry credentials for the push, from REGISTRY_HOST,
# REGISTRY_USER and REGISTRY_PASSWORD, as a Docker config.json at PATH.
set -euo pipefail
auth=$(printf '%s:%s' "${REGISTRY_USER:-}" "${REGISTRY_PASSWORD:-}" | base64 -w0)
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "${REGISTRY_HOST:-localhost:5000}" "$auth" > "$1"
echo "credentials written to $1"
