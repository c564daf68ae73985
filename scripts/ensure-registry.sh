#!/usr/bin/env bash
# Builds (or reuses) the CNCF Distribution registry the OCI registry tests run against, at .cache/bin/registry,
# and prints its path. Go's module and build caches make a second build quick; a copy already there returns at once.
#
# Usage: bash scripts/ensure-registry.sh
set -euo pipefail

MODULE="github.com/distribution/distribution/v3/cmd/registry"
VERSION="v3.0.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.cache/bin"
STAMP="$BIN/.registry-$VERSION"

if [[ -x "$BIN/registry" && -f "$STAMP" ]]; then
  echo "$BIN/registry"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "[registry] ERROR: Go is needed to build the Distribution registry ($MODULE@$VERSION)" >&2; exit 1; }
mkdir -p "$BIN"
echo "[registry] building $MODULE@$VERSION (a few minutes the first time)" >&2
GOBIN="$BIN" go install "$MODULE@$VERSION" >&2
touch "$STAMP"
echo "$BIN/registry"
