#!/usr/bin/env bash
# log-batch throughput with authentication off and on (`--app-name basic-auth`): the same wrk
# load (the MLflow anchor's logbatch.lua, 100 metrics per request) against a fresh SQLite store,
# once without auth and once with HTTP Basic credentials on every request (the gate, the
# verified-credential cache and the per-request permission check all in the path).
#
#   bench/auth_overhead.sh                      # release binary from $CARGO_TARGET_DIR
#   BIN=target/debug/ferroflow bench/auth_overhead.sh
#
# Knobs: WRK_DURATION=20s WRK_CONNECTIONS=16 WRK_THREADS=2 RUNS=16 REPEAT=3 OUT=<dir>
# Prints metrics/s for each mode (median of REPEAT wrk runs) and the on/off ratio.
set -euo pipefail

main() {
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
ANCHOR="${ANCHOR_DIR:-$ROOT/../shared/bench/mlflow-anchor}"
BIN="${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ferroflow}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
WRK_DURATION="${WRK_DURATION:-20s}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-16}"
WRK_THREADS="${WRK_THREADS:-2}"
RUNS="${RUNS:-16}"
REPEAT="${REPEAT:-3}"
OUT="${OUT:-$ROOT/bench/out/auth-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "missing wrk (apt-get install -y wrk)" >&2; exit 1; }
[[ -x "$BIN" ]] || { echo "no ferroflow binary at $BIN (cargo build --release, or BIN=…)" >&2; exit 1; }

PASSWORD="bench-admin-password"
AUTH_HEADER="Authorization: Basic $(printf 'admin:%s' "$PASSWORD" | base64)"
summary=()
for mode in off on; do
  work="$OUT/$mode"; mkdir -p "$work"
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  args=(server --host 127.0.0.1 --port "$port" --backend-store-uri "sqlite:///$work/bench.db"
        --artifacts-destination "$work/artifacts")
  header=()
  if [[ $mode == on ]]; then
    args+=(--app-name basic-auth)
    header=(-H "$AUTH_HEADER")
  fi
  MLFLOW_AUTH_ADMIN_PASSWORD="$PASSWORD" "$BIN" "${args[@]}" > "$work/server.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
  "$PY" - "$url" "$RUNS" "$mode" "$PASSWORD" > "$work/runs.txt" <<'EOF'
import sys, httpx
url, n, mode, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
auth = ("admin", password) if mode == "on" else None
c = httpx.Client(base_url=url, auth=auth)
exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "auth-bench"}).json()["experiment_id"]
for _ in range(n):
    print(c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"])
EOF
  rates=()
  for i in $(seq "$REPEAT"); do
    (cd "$work" && wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" "${header[@]}" \
      -s "$ANCHOR/logbatch.lua" "$url" -- runs.txt) > "$work/wrk-$i.txt"
    grep -q "non-2xx/3xx: 0 " "$work/wrk-$i.txt" || { echo "auth $mode: wrk saw errors" >&2; cat "$work/wrk-$i.txt" >&2; exit 1; }
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$i.txt")
    rates+=("$(awk -v r="$rps" 'BEGIN {printf "%.0f", r * 100}')")
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
  median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "auth $mode: log-batch metrics/s ${rates[*]} (median $median)"
  summary+=("$median")
done
ratio=$(awk -v on="${summary[1]}" -v off="${summary[0]}" 'BEGIN {printf "%.3f", on / off}')
echo "auth on / auth off: $ratio" | tee "$OUT/summary.txt"
}
main "$@"
