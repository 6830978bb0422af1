#!/bin/sh
# Waits for the proxy (up to ~30 s), then asks it 20 times and shows which copies answered.
set -e
tries=0
until curl -fsS http://proxy/ >/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "proxy never answered" >&2; exit 1; }
  sleep 1
done
for _ in $(seq 20); do curl -fsS http://proxy/; done | sort | uniq -c
