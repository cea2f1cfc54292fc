#!/usr/bin/env bash
# Serving latency and throughput (iris LR/RF/MLP, one-row requests, wrk on loopback):
# bare ONNX Runtime in-process, ferroflow endpoints with and without dynamic batching, and
# `mlflow models serve` of the same models (SKIP_MLFLOW=1 to skip).
#
#   bench/serving.sh        # needs a release build: cargo build --release --workspace --examples
# Knobs: DURATION=10s CONNS="1 16 64" MODELS="lr rf mlp" OUT=<dir> CARGO_TARGET_DIR=<dir>
set -euo pipefail
main() {
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"  # mlflow models serve runs uvicorn from the venv
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/ferroflow"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-1 16 64}"
MODELS="${MODELS:-lr rf mlp}"
OUT="${OUT:-$BENCH/out/serving-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$("$ROOT/scripts/onnxruntime.sh" | tail -n 1)}"
export BODY_FILE="$OUT/body.json"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "$1 not up" >&2; return 1; }
measure() {  # label url
  local label="$1" url="$2" c out
  for c in $CONNS; do
    out="$(wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "$DURATION" --latency -s "$BENCH/post.lua" "$url")"
    echo "$out" >"$OUT/wrk-$label-c$c.txt"
    local errors; errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)"
    printf '%-22s c=%-3s p50 %-9s p99 %-9s %10s req/s %s\n' "$label" "$c" \
      "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")" \
      "$(awk '/Requests\/sec/{printf "%.0f", $2}' <<<"$out")" "$errors" | tee -a "$OUT/summary.txt"
  done
}

port="$(free_port)"; work="$(mktemp -d)"
"$BIN" server --port "$port" --backend-store-uri "sqlite:///$work/db.sqlite" \
  --artifacts-destination "$work/artifacts" >"$OUT/server.log" 2>&1 &
srv=$!
trap 'kill $srv ${mlf:-} 2>/dev/null || true; rm -rf "$work"' EXIT
wait_up "http://127.0.0.1:$port/health"
"$PY" "$BENCH/serving_models.py" "http://127.0.0.1:$port" "$OUT"

for m in $MODELS; do
  "$TARGET/release/examples/bare_ort" "$OUT/$m.onnx" 4 5 2 | sed "s/^/$m /" | tee -a "$OUT/summary.txt"
  measure "ferroflow-$m-batch" "http://127.0.0.1:$port/serving-endpoints/$m-batch/invocations"
  measure "ferroflow-$m-nobatch" "http://127.0.0.1:$port/serving-endpoints/$m-nobatch/invocations"
done

if [[ -z "${SKIP_MLFLOW:-}" ]]; then
  for m in $MODELS; do
    mport="$(free_port)"
    MLFLOW_TRACKING_URI="http://127.0.0.1:$port" "$ROOT/.venv/bin/mlflow" models serve \
      -m "models:/iris-$m/1" --env-manager local -p "$mport" >"$OUT/mlflow-$m.log" 2>&1 &
    mlf=$!
    wait_up "http://127.0.0.1:$mport/ping"
    measure "mlflow-$m" "http://127.0.0.1:$mport/invocations"
    kill "$mlf"; wait "$mlf" 2>/dev/null || true; mlf=""
  done
fi
echo "summary: $OUT/summary.txt"
}
main "$@"
