#!/usr/bin/env bash
# Idempotently install the storage emulator the artifact tests run on loopback into <repo>/.tools
# (gitignored) and print the path of its blob-service binary as the last line: Azurite, Microsoft's
# Azure Storage emulator, from npm (needs node and npm). Re-installs only when .tools holds another
# version than the one pinned here. scripts/test starts it for the az:// artifact run.
#
# (S3 runs on moto from tests/python/requirements.txt. There is no GCS emulator here: none that
# installs from PyPI or npm accepts the XML API uploads object_store's GCS client makes.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
AZURITE_VERSION="3.37.0"
AZURITE_BLOB="$TOOLS/node_modules/.bin/azurite-blob"

installed_version() {
  node -e 'process.stdout.write(require(process.argv[1]).version)' \
    "$TOOLS/node_modules/azurite/package.json" 2>/dev/null || true
}

if [[ -x "$AZURITE_BLOB" && "$(installed_version)" == "$AZURITE_VERSION" ]]; then
  echo "emulators: azurite $AZURITE_VERSION already in $TOOLS" >&2
  echo "$AZURITE_BLOB"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "emulators: $tool is needed to install azurite (the Azure Blob emulator)" >&2
    exit 1
  fi
done

mkdir -p "$TOOLS"
LOG="$TOOLS/.npm-install.log"
echo "emulators: installing azurite@$AZURITE_VERSION into $TOOLS with npm" >&2
# Install scripts are not needed by the blob service (and newer npm skips unapproved ones anyway).
if ! npm install --prefix "$TOOLS" --no-audit --no-fund --ignore-scripts \
      "azurite@$AZURITE_VERSION" >"$LOG" 2>&1; then
  echo "emulators: npm install azurite@$AZURITE_VERSION failed; last lines of $LOG:" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
if [[ ! -x "$AZURITE_BLOB" || "$(installed_version)" != "$AZURITE_VERSION" ]]; then
  echo "emulators: npm finished but $AZURITE_BLOB (azurite $AZURITE_VERSION) is missing" >&2
  exit 1
fi
echo "$AZURITE_BLOB"
