#!/usr/bin/env bash
# collect.sh DIR: prints every checksum the parallel steps left in DIR, in name order.
set -euo pipefail
shopt -s nullglob
sums=("$1"/*.sum)
echo "${#sums[@]} checksums"
cat "${sums[@]}"
