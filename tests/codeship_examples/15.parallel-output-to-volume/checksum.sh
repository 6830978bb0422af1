#!/usr/bin/env bash
# checksum.sh INPUT OUTDIR: writes INPUT's sha256 to OUTDIR/<name>.sum
set -euo pipefail
sha256sum "$1" > "$2/$(basename "$1").sum"
