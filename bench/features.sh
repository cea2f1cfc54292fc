#!/usr/bin/env bash
# Feature store: Delta merge, point-in-time training sets and online lookup on ferroflow, and the
# same data through Feast (local provider, file/dask offline store, SQLite online store).
# Drivers: bench/features_bench.py (ferroflow, over HTTP) and bench/features_feast.py (Feast SDK,
# in-process, in its own venv: feast's pins must not touch .venv).
#
#   bench/features.sh                                  # full size, builds the release binary first
#   FERROFLOW_BIN=target/debug/ferroflow ROWS=200000 MERGE_ROWS=20000 SPINE_ROWS=20000 \
#     FT_ROWS=100000 FT_USERS=10000 LOOKUP_N=500 WRK_DURATION=2s bench/features.sh   # smoke
#
# Knobs (environment):
#   ROWS (10000000)          rows of `users` (user_id long + f0..f9 double), written by overwrite
#   MERGE_ROWS (1000000)     merged into `users`: half updates of existing keys, half new keys
#   FT_ROWS (1000000), FT_USERS (100000)   rows / users of each timestamped table (clicks, spend)
#   SPINE_ROWS (1000000)     training-set spine (user_id, event_ts, label)
#   SMALL_SPINE_ROWS (100000) also joined by ferroflow; Feast's fallback when the full spine fails
#   LOOKUP_N (5000), WARMUP (500)   sequential online lookups per case (http.client keep-alive)
#   WRK_DURATION (10s, 0 = no wrk), WRK_CONNS ("1 16")
#   CONFIGS ("sqlite sqlite-redis postgres"; also postgres-redis): backend store / online store
#     pairs; the first one that is "sqlite" runs everything, the others the online part only
#   PHASES                   override the first sqlite config's phases (features_bench.py run
#                            --phases, e.g. ftables,pit for the join alone on a fresh server)
#   ONLINE_BIG (1)           also publish the merged `users` table (10.5M rows) and look it up
#   REDIS_URL (redis://127.0.0.1:6379), PG (postgresql://postgres@127.0.0.1:5432; a database
#     ff_bench_<pid> is created with createdb and dropped at the end), PGHOST/PGUSER for createdb
#   SKIP_FEAST, FEAST_VENV (.venv-feast), FEAST_VERSION (0.67.0), FEAST_TIMEOUT (s, 3600, per
#     get_historical_features attempt), FEAST_LOOKUP_N (2000)
#   FERROFLOW_BIN (else ${CARGO_TARGET_DIR:-target}/release/ferroflow, built unless SKIP_BUILD=1)
#   OUT (bench/out/features-<time>/), WORK (scratch, removed unless KEEP_WORK=1), DATA (reuse a
#   data dir from an earlier run: must hold meta.json), VERIFY (1: check merge/join/lookup results)
set -euo pipefail
main() {
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z "${FERROFLOW_BIN:-}" ]]; then
  BIN="$TARGET/release/ferroflow"
  [[ -n "${SKIP_BUILD:-}" ]] || (cd "$ROOT" && cargo build --release -p ferroflow-server)
else
  BIN="$FERROFLOW_BIN"
fi
[[ -x "$BIN" ]] || { echo "no ferroflow binary at $BIN" >&2; exit 1; }
ROWS="${ROWS:-10000000}"
MERGE_ROWS="${MERGE_ROWS:-1000000}"
FT_ROWS="${FT_ROWS:-1000000}"
FT_USERS="${FT_USERS:-100000}"
SPINE_ROWS="${SPINE_ROWS:-1000000}"
SMALL_SPINE_ROWS="${SMALL_SPINE_ROWS:-100000}"
LOOKUP_N="${LOOKUP_N:-5000}"
WARMUP="${WARMUP:-500}"
WRK_DURATION="${WRK_DURATION:-10s}"
WRK_CONNS="${WRK_CONNS:-1 16}"
CONFIGS="${CONFIGS:-sqlite sqlite-redis postgres}"
ONLINE_BIG="${ONLINE_BIG:-1}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
PG="${PG:-postgresql://postgres@127.0.0.1:5432}"
VERIFY="${VERIFY:-1}"
FEAST_VENV="${FEAST_VENV:-$ROOT/.venv-feast}"
FEAST_VERSION="${FEAST_VERSION:-0.67.0}"
FEAST_TIMEOUT="${FEAST_TIMEOUT:-3600}"
FEAST_LOOKUP_N="${FEAST_LOOKUP_N:-2000}"
OUT="${OUT:-$BENCH/out/features-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="${WORK:-$(mktemp -d /tmp/ff-features.XXXXXX)}"
mkdir -p "$WORK"
DATA="${DATA:-$WORK/data}"
RESULTS="$OUT/results.jsonl"
PGDB="ff_bench_$$"
PG_CREATED=""
SRV=""
cleanup() {
  [[ -n "$SRV" ]] && { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; }
  [[ -n "$PG_CREATED" ]] && dropdb -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" --if-exists "$PGDB" || true
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "$1 not up" >&2; return 1; }
note() { "$PY" -c 'import json,sys; print(json.dumps(dict(config=sys.argv[1], figure=sys.argv[2], value=sys.argv[3], unit="")))' "$@" >>"$RESULTS"; echo "  [$1] $2: $3"; }
start_server() {  # label backend-uri artifacts-dir [extra flags]
  local label="$1" uri="$2" art="$3"; shift 3
  PORT="$(free_port)"
  "$BIN" server --port "$PORT" --backend-store-uri "$uri" --artifacts-destination "$art" "$@" \
    >>"$OUT/server-$label.log" 2>&1 &
  SRV=$!
  wait_up "http://127.0.0.1:$PORT/health"
  echo "== $label: ferroflow pid $SRV on :$PORT ($uri${*:+ $*})"
}
stop_server() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=""; }
drive() {  # label artifacts-dir phases
  "$PY" "$BENCH/features_bench.py" run --url "http://127.0.0.1:$PORT" --pid "$SRV" --artifacts "$2" \
    --data "$DATA" --config "$1" --phases "$3" --out "$RESULTS" --lookup-n "$LOOKUP_N" \
    --warmup "$WARMUP" --wrk-duration "$WRK_DURATION" --wrk-conns "$WRK_CONNS" --wrk-dir "$OUT" \
    --verify "$VERIFY" 2>&1 | tee -a "$OUT/driver.log"
  return "${PIPESTATUS[0]}"
}

{
  echo "date: $(date -u +%FT%TZ)  host: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "ferroflow: $BIN ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
  echo "sizes: ROWS=$ROWS MERGE_ROWS=$MERGE_ROWS FT_ROWS=$FT_ROWS FT_USERS=$FT_USERS SPINE_ROWS=$SPINE_ROWS SMALL_SPINE_ROWS=$SMALL_SPINE_ROWS"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt"

if [[ ! -f "$DATA/meta.json" ]]; then
  "$PY" "$BENCH/features_bench.py" gen --data "$DATA" --rows "$ROWS" --merge-rows "$MERGE_ROWS" \
    --ft-rows "$FT_ROWS" --ft-users "$FT_USERS" --spine-rows "$SPINE_ROWS" --small-spine-rows "$SMALL_SPINE_ROWS"
fi

has_online_flag=""
"$BIN" server --help 2>&1 | grep -q -- '--online-store' && has_online_flag=1
full_done=""
for cfg in $CONFIGS; do
  dir="$WORK/$cfg"; mkdir -p "$dir"
  extra=()
  if [[ "$cfg" == *-redis ]]; then
    [[ -n "$has_online_flag" ]] || { note "$cfg" "skipped" "ferroflow server --help has no --online-store"; continue; }
    extra=(--online-store "$REDIS_URL")
    echo "redis dbsize before: $(redis-cli -u "$REDIS_URL" dbsize 2>/dev/null || echo '?')"
  fi
  case "$cfg" in
    sqlite*) uri="sqlite:///$dir/db.sqlite" ;;
    postgres*)
      if [[ -z "$PG_CREATED" ]]; then
        createdb -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" "$PGDB"; PG_CREATED=1
      else  # a fresh database per configuration
        dropdb -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" "$PGDB"
        createdb -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" "$PGDB"
      fi
      uri="$PG/$PGDB" ;;
    *) echo "unknown config $cfg" >&2; exit 1 ;;
  esac
  start_server "$cfg" "$uri" "$dir/artifacts" "${extra[@]}"
  if [[ "$cfg" == sqlite && -z "$full_done" ]]; then
    phases="create,merge,ftables,pit,online"
    [[ "$ONLINE_BIG" == 1 ]] && phases="$phases,onlinebig"
    phases="${PHASES:-$phases}"
    full_done=1
  else
    phases="ftables,online"
  fi
  [[ "$cfg" == *-redis ]] && phases="$phases,cleanup"
  drive "$cfg" "$dir/artifacts" "$phases" || note "$cfg" "driver" "FAILED (rc $?), see driver.log / server-$cfg.log"
  echo "   server VmHWM over the whole $cfg run: $(awk '/VmHWM/{print $2, $3}' "/proc/$SRV/status")"
  stop_server
  [[ "$cfg" == *-redis ]] && echo "redis dbsize after: $(redis-cli -u "$REDIS_URL" dbsize 2>/dev/null || echo '?')"
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$dir"
done

if [[ -z "${SKIP_FEAST:-}" ]]; then
  FPY="$FEAST_VENV/bin/python"
  if ! "$FPY" -c "import feast, sys; sys.exit(feast.__version__ != '$FEAST_VERSION')" 2>/dev/null; then
    python3 -m venv "$FEAST_VENV"
    echo '*' >"$FEAST_VENV/.gitignore"  # keeps the venv out of git status
    "$FPY" -m pip install -q "feast==$FEAST_VERSION"
  fi
  repo="$WORK/feast"
  feast() {  # subcommand args…; FT=<seconds> in the environment sets a timeout
    timeout "${FT:-0}" "$FPY" "$BENCH/features_feast.py" "$@" --repo "$repo" --data "$DATA" \
      --out "$RESULTS" --verify "$VERIFY" 2>&1 | tee -a "$OUT/feast.log"
    return "${PIPESTATUS[0]}"
  }
  echo "== feast $FEAST_VERSION ($FEAST_VENV)"
  feast setup
  rc=0; FT="$FEAST_TIMEOUT" feast historical --spine "$DATA/spine.parquet" || rc=$?
  if [[ $rc != 0 ]]; then
    note feast "get_historical_features, spine $SPINE_ROWS rows" "FAILED (rc $rc: 124 = timeout after ${FEAST_TIMEOUT}s, 137 = killed/OOM); smaller spine below"
    FT="$FEAST_TIMEOUT" feast historical --spine "$DATA/spine_small.parquet" || note feast "get_historical_features, spine $SMALL_SPINE_ROWS rows" "FAILED (rc $?)"
  fi
  feast materialize || note feast materialize "FAILED (rc $?)"
  feast online --n "$FEAST_LOOKUP_N" || note feast online "FAILED (rc $?)"
fi

"$PY" "$BENCH/features_bench.py" report --out "$RESULTS" | tee "$OUT/summary.md"
echo "results: $OUT/summary.md ($RESULTS)"
}
main "$@"
