#!/usr/bin/env bash
# Leaves a file in the shared volume for the next step to read.
set -euo pipefail
printf 'stamped at %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > /shared/stamp
