#!/bin/sh
# Needs the Docker daemon that add_docker gives on Codeship.
set -e
mkdir -p tmp
cp /data/build-id tmp/build-id
docker build -f Dockerfile.runtime -t made-at-runtime .
