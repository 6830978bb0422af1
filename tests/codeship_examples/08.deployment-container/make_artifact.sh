#!/bin/sh
# Writes a build id into the shared volume.
set -e
mkdir -p /data
echo "build $(date +%s)" > /data/build-id
echo "artifact written"
