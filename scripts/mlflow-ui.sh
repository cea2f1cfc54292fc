#!/usr/bin/env bash
# Idempotently fetch MLflow's web UI (the built bundle inside the mlflow 3.17.2 wheel on PyPI,
# mlflow/server/js/build) into <repo>/.mlflow-ui and print its absolute path as the last line.
# `ferroflow server` serves it at / and under /static-files/ (--static-folder or
# FERROFLOW_STATIC_FOLDER; it also looks in ./.mlflow-ui and next to its binary's repo).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="3.17.2"
WHEEL_SHA256="4e44c03791beb518d8b0a40b0982d958c2634d902f46d67d7907c82107f21fac"
DEST="$ROOT/.mlflow-ui"
STAMP="$DEST/.mlflow-version"

if [[ -f "$DEST/index.html" && "$(cat "$STAMP" 2>/dev/null || true)" == "$VERSION" ]]; then
  echo "mlflow-ui: $DEST already holds the mlflow $VERSION UI" >&2
  echo "$DEST"
  exit 0
fi

if [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
else
  PY="python3"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "mlflow-ui: downloading the mlflow==$VERSION wheel with $PY -m pip" >&2
"$PY" -m pip download "mlflow==$VERSION" --no-deps --only-binary=:all: \
  --disable-pip-version-check --no-input -q -d "$WORK" >&2

wheel="$WORK/mlflow-$VERSION-py3-none-any.whl"
if [[ ! -f "$wheel" ]]; then
  echo "mlflow-ui: pip did not leave $(basename "$wheel") in $WORK" >&2
  exit 1
fi
have="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [[ "$have" != "$WHEEL_SHA256" ]]; then
  echo "mlflow-ui: sha256 mismatch for $(basename "$wheel"): got $have, want $WHEEL_SHA256" >&2
  exit 1
fi

# Extract with Python's zipfile (no unzip needed) into a fresh folder, then swap it in.
rm -rf "$DEST.tmp"
"$PY" - "$wheel" "$DEST.tmp" <<'PYEOF'
import os, shutil, sys, zipfile
wheel, dest = sys.argv[1:]
prefix = "mlflow/server/js/build/"
count = 0
with zipfile.ZipFile(wheel) as zf:
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            raise SystemExit(f"mlflow-ui: unsafe path in wheel: {info.filename}")
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
if count == 0 or not os.path.exists(os.path.join(dest, "index.html")):
    raise SystemExit("mlflow-ui: the wheel holds no mlflow/server/js/build/index.html")
PYEOF
echo "$VERSION" >"$DEST.tmp/.mlflow-version"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "mlflow-ui: installed the mlflow $VERSION UI in $DEST" >&2
echo "$DEST"
