#!/usr/bin/env bash
# Creates (or reuses) a Python venv at .cache/venv with a pinned moto server (used by the tests, the
# bench and the sandbox to simulate ECR), and prints the absolute path of `moto_server` on stdout.
# .ci/run calls it; so does harness/moto.ts (installMoto) for the tests and the bench.
# Logs go to stderr. Idempotent: a second run only checks a stamp file and returns at once.
#
# Usage: bash scripts/ensure-moto.sh
set -euo pipefail

MOTO_VERSION="5.2.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.cache/venv"
MOTO_SERVER="$VENV/bin/moto_server"
STAMP="$VENV/.moto-server-$MOTO_VERSION"
PYTHON="${PYTHON:-python3}"

log() { echo "[moto] $*" >&2; }
die() { echo "[moto] ERROR: $*" >&2; exit 1; }

# Fast path: installed earlier at the pinned version.
if [[ -f "$STAMP" && -x "$MOTO_SERVER" && -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  echo "$MOTO_SERVER"
  exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3 (with venv) to run moto's server"

# (Re)create the venv if it is missing or broken.
if ! { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }; then
  log "creating venv at .cache/venv"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV" >&2 || die "could not create a venv with '$PYTHON -m venv' (is the venv module installed?)"
fi

installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
if [[ "$installed" != "$MOTO_VERSION" || ! -x "$MOTO_SERVER" ]]; then
  log "installing moto[server]==$MOTO_VERSION into .cache/venv (installed: ${installed:-none})"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2 \
    || die "pip install 'moto[server]==$MOTO_VERSION' failed"
fi

[[ -x "$MOTO_SERVER" ]] || die "moto_server is missing from .cache/venv/bin after installing moto[server]==$MOTO_VERSION"
"$VENV/bin/python" -c 'import moto.server' >/dev/null 2>&1 || die "moto's server extras do not import (flask etc. missing?)"
rm -f "$VENV"/.moto-server-*
touch "$STAMP"
log "moto[server]==$MOTO_VERSION ready"
echo "$MOTO_SERVER"
