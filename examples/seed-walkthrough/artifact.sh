#!/bin/sh
# Writes the artifact into the volume: /app is the checkout's ./tmp (codeship-services.yml),
# which volumes_test mounts too. The build id says which pipeline wrote it.
set -eu
mkdir -p /app
printf 'artifact of build %s, written %s\n' "${CI_BUILD_ID:-local}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  > /app/artifact.txt
echo "wrote /app/artifact.txt: $(cat /app/artifact.txt)"
