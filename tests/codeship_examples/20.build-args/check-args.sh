#!/usr/bin/env bash
# Fails naming every build arg that kept its Dockerfile default.
missing=0
for name in PLAIN CI SEALED_INLINE SEALED_FILE; do
  if [[ "${!name}" == unset ]]; then
    echo "$name did not reach the build"
    missing=1
  else
    echo "$name reached the build"
  fi
done
exit "$missing"
