#!/usr/bin/env bash
# Idempotently create <repo>/.venv and install tests/python/requirements.txt into it.
# Re-installs only when the requirements file's hash differs from .venv/.requirements.sha.
# Override the interpreter with PYTHON=/path/to/python3 (needs >= 3.10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/tests/python/requirements.txt"
STAMP="$VENV/.requirements.sha"
LOG="$VENV/.pip-install.log"
PYTHON="${PYTHON:-python3}"

if [[ ! -f "$REQ" ]]; then
  echo "python-env: missing $REQ" >&2
  exit 1
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
created=""

if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "python-env: $PYTHON is missing or older than 3.10" >&2
    exit 1
  fi
  rm -rf "$VENV"
  if ! venv_err="$("$PYTHON" -m venv "$VENV" 2>&1)"; then
    echo "python-env: '$PYTHON -m venv' failed (on Debian: apt-get install python3-venv):" >&2
    echo "$venv_err" >&2
    exit 1
  fi
  created="created .venv and "
fi

have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$have" == "$want" ]]; then
  echo "python-env: $VENV up to date (requirements ${want:0:12})"
  exit 0
fi

rm -f "$STAMP"
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
      -r "$REQ" >"$LOG" 2>&1; then
  echo "python-env: pip install failed; last lines of $LOG:" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
echo "$want" >"$STAMP"
echo "python-env: ${created}installed $(basename "$REQ") into $VENV (requirements ${want:0:12})"
