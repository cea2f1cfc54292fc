#!/usr/bin/env bash
# ferroflow benchmark suite (SQLite backend). See bench/README.md.
#
#   bench/run.sh                       # everything: build, start-up/RSS, setup, wrk x2, latency, 1M search
#   SKIP_BUILD=1 bench/run.sh          # reuse the existing release binary
#   SKIP_1M=1 bench/run.sh             # skip the 1,000,000-run search benchmark
#   KEEP_DB=1 bench/run.sh             # keep the ~1 GB generated 1M-run SQLite file in $OUT/db1m
#
# Knobs (env): SEARCH_RUNS=10000 HISTORY_STEPS=10000 BIG_RUNS=1000000 WRK_DURATION=20s
#   WRK_CONNECTIONS=16 WRK_THREADS=2 LAT_N=20 STARTUP_TRIALS=5 OUT=<dir> PYTHON=<python with httpx>
#   ANCHOR_DIR=<repo>/../shared/bench/mlflow-anchor CARGO_TARGET_DIR=<target dir>
#   WRK_REPEAT=1 (runs each wrk test N times; the summary takes the median)
# Output: $OUT (default bench/out/run-YYYYmmdd-HHMMSS/): raw tool output + summary.txt.
set -euo pipefail

main() {  # whole script in a function: bash parses it fully before running (safe to edit mid-run)
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
ANCHOR="${ANCHOR_DIR:-$ROOT/../shared/bench/mlflow-anchor}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/ferroflow"
SEARCH_RUNS="${SEARCH_RUNS:-10000}"
HISTORY_STEPS="${HISTORY_STEPS:-10000}"
BIG_RUNS="${BIG_RUNS:-1000000}"
WRK_DURATION="${WRK_DURATION:-20s}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-16}"
WRK_THREADS="${WRK_THREADS:-2}"
LAT_N="${LAT_N:-20}"
STARTUP_TRIALS="${STARTUP_TRIALS:-5}"
OUT="${OUT:-$BENCH/out/run-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loadnote() {  # machine load at each phase: loadavg + how many compiler processes are running
  local n
  n=$(ps -eo comm= | grep -cxE 'rustc|cc1|cc1plus|ld|cargo|clippy-driver|build-script-b.*' || true)
  printf '%-24s loadavg %s | compiler procs: %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" "${n:-0}" >>"$OUT/load.txt"
}
for tool in wrk curl sqlite3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk curl sqlite3)" >&2; exit 1; }
done
"$PY" -c 'import httpx' 2>/dev/null || { echo "$PY lacks httpx (set PYTHON=...)" >&2; exit 1; }

# ---------------------------------------------------------------- build
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "cargo build --release -p ferroflow-server"
  (cd "$ROOT" && cargo build --release -p ferroflow-server) 2>&1 | tail -n 3 >&2
fi
[[ -x "$BIN" ]] || { echo "no binary at $BIN" >&2; exit 1; }
{
  echo "date: $(date -Is)"; echo "host: $(uname -srm), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "binary: $BIN ($(stat -c %s "$BIN") bytes, built $(date -r "$BIN" -Is))"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (dirty tree)')"
} >"$OUT/env.txt"
loadnote "start"

# ---------------------------------------------------------------- server helpers
SERVER_PID=""
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_server() {  # $1 = sqlite file, $2 = artifacts dir, $3 = log file; sets SERVER_PID, PORT, URL
  PORT="$(free_port)"; URL="http://127.0.0.1:$PORT"
  "$BIN" server --host 127.0.0.1 --port "$PORT" --backend-store-uri "sqlite:///$1" \
    --artifacts-destination "$2" >"$3" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if curl -sf "$URL/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died; see $3" >&2; cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not answer /health within 60 s" >&2; exit 1
}
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -9 "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
rss_mib() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
trap stop_server EXIT

# ---------------------------------------------------------------- 1. start-up time and idle RSS
log "start-up time / idle RSS ($STARTUP_TRIALS trials)"
loadnote "startup"
"$PY" "$BENCH/startup.py" "$BIN" "$OUT/startup" --trials "$STARTUP_TRIALS" | tee "$OUT/startup.txt" >&2

# ---------------------------------------------------------------- 2. anchor setup over HTTP
mkdir -p "$OUT/db" "$OUT/anchor"
start_server "$OUT/db/ferroflow.db" "$OUT/db/artifacts" "$OUT/server.log"
log "server pid $SERVER_PID at $URL; running setup_bench.py (search runs $SEARCH_RUNS, history steps $HISTORY_STEPS)"
loadnote "setup_bench"
SETUP_T0=$(date +%s.%N)
(cd "$OUT/anchor" && "$PY" "$ANCHOR/setup_bench.py" "$URL" --search-runs "$SEARCH_RUNS" --history-steps "$HISTORY_STEPS") \
  >"$OUT/setup.txt" 2>&1 || { cat "$OUT/setup.txt" >&2; exit 1; }
SETUP_S=$(echo "$(date +%s.%N) - $SETUP_T0" | bc)
grep -E '^(history|search):' "$OUT/setup.txt" >&2 || true
RSS_AFTER_SETUP=$(rss_mib "$SERVER_PID")

# ---------------------------------------------------------------- 3. wrk log-batch / log-metric
WRK_REPEAT="${WRK_REPEAT:-1}"
for i in $(seq 1 "$WRK_REPEAT"); do
  for kind in logbatch logmetric; do
    log "wrk $kind -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION (#$i of $WRK_REPEAT)"
    loadnote "wrk $kind #$i"
    wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --timeout 30s --latency \
      -s "$ANCHOR/$kind.lua" "$URL" -- "$OUT/anchor/runs.txt" >"$OUT/wrk_${kind}_$i.txt" 2>&1
    grep -E 'Requests/sec|50%|99%|non-2xx' "$OUT/wrk_${kind}_$i.txt" >&2
  done
done
RSS_AFTER_LOAD=$(rss_mib "$SERVER_PID")

# ---------------------------------------------------------------- 4. read latency (anchor latency.py)
log "latency.py --n $LAT_N"
loadnote "latency"
(cd "$OUT/anchor" && "$PY" "$ANCHOR/latency.py" "$URL" --n "$LAT_N") | tee "$OUT/latency.txt" >&2
stop_server

# ---------------------------------------------------------------- 5. runs/search over BIG_RUNS generated runs
if [[ "${SKIP_1M:-0}" != 1 ]]; then
  mkdir -p "$OUT/db1m"
  BIGDB="$OUT/db1m/big.db"
  log "creating schema for $BIGDB (one server start applies the migrations)"
  start_server "$BIGDB" "$OUT/db1m/artifacts" "$OUT/server1m-init.log"
  stop_server
  log "gen_runs.py: $BIG_RUNS runs straight into SQLite"
  loadnote "gen_runs"
  GEN_T0=$(date +%s.%N)
  "$PY" "$BENCH/gen_runs.py" "$BIGDB" --runs "$BIG_RUNS" --experiment-name "gen-search-$BIG_RUNS" >"$OUT/gen_runs.txt" 2>"$OUT/gen_runs.log"
  GEN_S=$(echo "$(date +%s.%N) - $GEN_T0" | bc)
  BIG_EXP=$(sed -n 's/^experiment_id=//p' "$OUT/gen_runs.txt")
  tail -n 1 "$OUT/gen_runs.log" >&2
  start_server "$BIGDB" "$OUT/db1m/artifacts" "$OUT/server1m.log"
  log "search_latency.py over experiment $BIG_EXP ($BIG_RUNS runs)"
  loadnote "search 1M"
  "$PY" "$BENCH/search_latency.py" "$URL" --experiment-id "$BIG_EXP" --n "$LAT_N" | tee "$OUT/search1m.txt" >&2
  RSS_AFTER_1M=$(rss_mib "$SERVER_PID")
  stop_server
  # The server's SQL for this query (tracking/src/store/search.rs), for diagnosis.
  {
    echo "-- $(du -h "$BIGDB" | cut -f1) database, $BIG_RUNS runs in experiment $BIG_EXP; sqlite3 $(sqlite3 --version | cut -d' ' -f1)"
    # Mirrors run_search_query in tracking/src/store/search.rs (since b47f2a1 the ORDER BY reuses the
    # filter's join on the same metric, so SQLite can walk latest_metrics_key_value and stop early).
    Q="SELECT r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri FROM runs r JOIN latest_metrics f0 ON f0.run_uuid = r.run_uuid AND f0.key = 'acc' AND f0.is_nan = 0 AND f0.value > 0.5 WHERE r.experiment_id IN ($BIG_EXP) AND r.lifecycle_stage IN ('active') ORDER BY f0.value DESC, r.start_time DESC, r.run_uuid ASC LIMIT 100 OFFSET 0"
    echo "$Q;"
    echo "-- EXPLAIN QUERY PLAN:"
    sqlite3 "$BIGDB" "EXPLAIN QUERY PLAN $Q"
    echo "-- sqlite3 CLI timing (3 runs):"
    printf '.timer on\n%s;\n%s;\n%s;\n' "SELECT count(*) FROM ($Q)" "SELECT count(*) FROM ($Q)" "SELECT count(*) FROM ($Q)" | sqlite3 "$BIGDB" | grep -i 'run time' || true
  } >"$OUT/search1m_plan.txt" 2>&1
  [[ "${KEEP_DB:-0}" == 1 ]] || rm -f "$BIGDB" "$BIGDB-wal" "$BIGDB-shm"  # ~1 GB
fi
loadnote "end"

# ---------------------------------------------------------------- summary
kv() { sed -n "s/^$1=//p" "$OUT/startup.txt"; }
p50() { grep -F "$2" "$1" | head -n 1 | sed -n 's/.* p50=\([0-9.]*\)ms.*/\1/p'; }
rps() {  # median Requests/sec over the repeats
  awk '/Requests\/sec/{print $2}' "$OUT"/wrk_"$1"_*.txt | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
rps_all() { awk '/Requests\/sec/{printf "%s%s", s, $2; s=" "}' "$OUT"/wrk_"$1"_*.txt; }
errs() { sed -n 's/^non-2xx\/3xx: \([0-9]*\).*errors[^:]*: \(.*\)/non2xx=\1 err=\2/p' "$OUT"/wrk_"$1"_*.txt | tr '\n' ' '; }
LB_RPS=$(rps logbatch); LM_RPS=$(rps logmetric)
LB_MPS=$(awk -v r="$LB_RPS" 'BEGIN{printf "%.0f", r*100}')
SEARCH_P50=$(p50 "$OUT/latency.txt" "runs/search acc>0.5")
HIST_P50=$(p50 "$OUT/latency.txt" "get-history 10k steps (no max_results)")
HIST25_P50=$(p50 "$OUT/latency.txt" "get-history 10k steps (max_results=25000)")
START_MS=$(kv startup_max_ms); START_FRESH=$(kv startup_fresh_ms); START_WARM=$(kv startup_warm_median_ms)
RSS=$(kv idle_rss_max_mib)
BIG_P50="skipped"; [[ -f "$OUT/search1m.txt" ]] && BIG_P50=$(p50 "$OUT/search1m.txt" "runs/search acc>0.5")
ok() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN{ if (v=="" || v=="skipped") {print "n/a"; exit}
  pass = (op==">=") ? (v+0 >= t+0) : (op=="<") ? (v+0 < t+0) : (v+0 <= t+0); print (pass ? "PASS" : "MISS") }'; }
{
  echo "ferroflow benchmark  $(date -Is)  ($(nproc) cores; load: see load.txt)  out: $OUT"
  printf '%-46s %14s %12s %6s\n' "figure" "measured" "target" ""
  printf '%-46s %14s %12s %6s\n' "log-batch metrics/s (100/req, c=$WRK_CONNECTIONS, wrk)" "$LB_MPS" ">= 80000" "$(ok "$LB_MPS" '>=' 80000)"
  printf '%-46s %14s %12s %6s\n' "log-metric req/s (c=$WRK_CONNECTIONS, wrk)" "$LM_RPS" ">= 5000" "$(ok "$LM_RPS" '>=' 5000)"
  printf '%-46s %14s %12s %6s\n' "runs/search p50, $SEARCH_RUNS runs (ms)" "$SEARCH_P50" "<= 30" "$(ok "$SEARCH_P50" '<=' 30)"
  printf '%-46s %14s %12s %6s\n' "get-history p50, $HISTORY_STEPS points (ms)" "$HIST_P50" "<= 15" "$(ok "$HIST_P50" '<=' 15)"
  printf '%-46s %14s %12s %6s\n' "start-up to /health 200, worst trial (ms)" "$START_MS" "< 500" "$(ok "$START_MS" '<' 500)"
  printf '%-46s %14s %12s %6s\n' "idle RSS after start-up, worst trial (MiB)" "$RSS" "< 40" "$(ok "$RSS" '<' 40)"
  printf '%-46s %14s %12s %6s\n' "runs/search p50, $BIG_RUNS runs (ms)" "$BIG_P50" "<= 300" "$(ok "$BIG_P50" '<=' 300)"
  echo "details: wrk req/s per repeat: log-batch $(rps_all logbatch) [$(errs logbatch)]; log-metric $(rps_all logmetric) [$(errs logmetric)]"
  echo "         start-up fresh db ${START_FRESH} ms, existing db median ${START_WARM} ms; get-history max_results=25000 p50 ${HIST25_P50} ms"
  echo "         RSS after setup ${RSS_AFTER_SETUP} MiB, after wrk ${RSS_AFTER_LOAD} MiB${RSS_AFTER_1M:+, after the $BIG_RUNS-run search ${RSS_AFTER_1M} MiB}"
  echo "         setup_bench.py ${SETUP_S}s${GEN_S:+; gen_runs.py $BIG_RUNS runs ${GEN_S}s}"
  echo "load during phases:"; sed 's/^/  /' "$OUT/load.txt"
} | tee "$OUT/summary.txt"
}

main "$@"
