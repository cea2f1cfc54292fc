#!/usr/bin/env bash
# Idempotently fetch ONNX Runtime's shared library (from the onnxruntime 1.31.1 wheel on PyPI) into
# <repo>/.ort/lib and print its absolute path as the last line. ferroflow-serving loads it at run
# time (ort's `load-dynamic`): pass it as --onnxruntime-lib <path> or ORT_DYLIB_PATH=<path>.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="1.31.1"
WHEEL_SHA256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"
LIB_DIR="$ROOT/.ort/lib"
LIB="$LIB_DIR/libonnxruntime.so.$VERSION"

if [[ -f "$LIB" ]]; then
  echo "onnxruntime: $LIB already present" >&2
  echo "$LIB"
  exit 0
fi

if [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
else
  PY="python3"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "onnxruntime: downloading the onnxruntime==$VERSION wheel with $PY -m pip" >&2
"$PY" -m pip download "onnxruntime==$VERSION" --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 \
  --disable-pip-version-check --no-input -q -d "$WORK" >&2

shopt -s nullglob
wheels=("$WORK"/onnxruntime-"$VERSION"-*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
  echo "onnxruntime: expected one onnxruntime-$VERSION wheel in $WORK, found ${#wheels[@]}" >&2
  exit 1
fi
wheel="${wheels[0]}"

have="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [[ "$have" != "$WHEEL_SHA256" ]]; then
  echo "onnxruntime: sha256 mismatch for $(basename "$wheel"): got $have, want $WHEEL_SHA256" >&2
  exit 1
fi

member="onnxruntime/capi/libonnxruntime.so.$VERSION"
mkdir -p "$LIB_DIR"
# Extract with Python's zipfile so the script does not depend on unzip being installed.
"$PY" - "$wheel" "$member" "$LIB.tmp" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(dest, "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
chmod 0755 "$LIB.tmp"
mv "$LIB.tmp" "$LIB"
echo "onnxruntime: installed $LIB" >&2
echo "$LIB"
