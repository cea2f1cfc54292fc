#!/usr/bin/env bash
# The reliability suite's long mode: the whole API fuzzed from api-spec/openapi.yaml with
# Schemathesis, 200 generated cases per operation (scripts/test runs 10), and 64 concurrent
# writers on one run sending 100 log-batch requests each (scripts/test: 5).
#
#   bench/reliability_fuzz.sh                 # debug binary from $CARGO_TARGET_DIR
#   FERROFLOW_FUZZ_EXAMPLES=1000 bench/reliability_fuzz.sh
#
# Prints operations, cases and failures; the logs land in $FERROFLOW_TEST_OUTPUT/reliability.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERROFLOW_BIN="${FERROFLOW_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/ferroflow}"
export FERROFLOW_FUZZ_EXAMPLES="${FERROFLOW_FUZZ_EXAMPLES:-200}"
export FERROFLOW_CONCURRENCY_BATCHES="${FERROFLOW_CONCURRENCY_BATCHES:-100}"
start=$(date +%s)
"$ROOT/.venv/bin/python" -m pytest "$ROOT/tests/reliability" -q -p no:cacheprovider -s
echo "the long mode took $(( $(date +%s) - start )) s"
