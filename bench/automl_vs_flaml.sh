#!/usr/bin/env bash
# ferroflow AutoML against FLAML (flaml[automl]) with the same time budget, split and metric on
# scikit-learn's bundled datasets plus 50k-row synthetic ones; see bench/automl_vs_flaml.py.
#
#   cargo build --release -p ferroflow-server && bench/automl_vs_flaml.sh    # ~16 min at 60 s
#   BUDGET=20 DATASETS=iris,diabetes bench/automl_vs_flaml.sh                # quick
# Knobs: BUDGET (s, 60), DATASETS (all), FERROFLOW_BIN (else ${CARGO_TARGET_DIR:-target}/release/ferroflow),
#        OUT (JSON, /tmp/automl_vs_flaml-<time>.json), WORK (scratch dir), FLAML_N_JOBS (-1), PYTHON.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export FERROFLOW_BIN="${FERROFLOW_BIN:-${CARGO_TARGET_DIR:-target}/release/ferroflow}"
[[ -x "$FERROFLOW_BIN" ]] || { echo "no ferroflow binary at $FERROFLOW_BIN (cargo build --release -p ferroflow-server)" >&2; exit 1; }
# Pinned so the comparison is reproducible; pip is skipped when these versions are present.
if ! "$PY" -c 'import flaml, lightgbm, xgboost; assert (flaml.__version__, lightgbm.__version__, xgboost.__version__) == ("2.7.0", "4.7.0", "2.1.4")' 2>/dev/null; then
  "$PY" -m pip install -q "flaml[automl]==2.7.0" "lightgbm==4.7.0" "xgboost==2.1.4"
fi
exec "$PY" "$BENCH/automl_vs_flaml.py"
