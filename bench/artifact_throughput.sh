#!/usr/bin/env bash
# Artifact upload/download throughput through the proxied mlflow-artifacts API, and the
# server's peak RSS while moving the file.
# Usage: bench/artifact_throughput.sh BASE_URL [SIZE_MB=1024] [SERVER_PID]
#   SERVER_PID: read VmHWM/VmRSS of that process (and its children) before and after.
# Works against ferroflow and against `mlflow server --artifacts-destination …`.
set -euo pipefail
url="${1:?base url}"; size="${2:-1024}"; pid="${3:-}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
dd if=/dev/urandom of="$tmp/in.bin" bs=1M count="$size" status=none
path="bench-$(date +%s%N)/big.bin"

rss() {  # peak and current RSS (MiB) over the process and its descendants
  [[ -n "$pid" ]] || { echo "n/a"; return; }
  local pids hwm=0 cur=0
  pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
  for p in $pids; do
    [[ -r /proc/$p/status ]] || continue
    hwm=$(( hwm + $(awk '/VmHWM/{print $2}' /proc/$p/status) ))
    cur=$(( cur + $(awk '/VmRSS/{print $2}' /proc/$p/status) ))
  done
  echo "peak $((hwm / 1024)) MiB, now $((cur / 1024)) MiB"
}

echo "server RSS before: $(rss)"
up=$(curl -sf -o /dev/null -w '%{time_total}' -T "$tmp/in.bin" \
  -H 'Content-Type: application/octet-stream' "$url/api/2.0/mlflow-artifacts/artifacts/$path")
down=$(curl -sf -o "$tmp/out.bin" -w '%{time_total}' "$url/api/2.0/mlflow-artifacts/artifacts/$path")
cmp -s "$tmp/in.bin" "$tmp/out.bin" || { echo "downloaded bytes differ" >&2; exit 1; }
echo "server RSS after:  $(rss)"
awk -v s="$size" -v u="$up" -v d="$down" 'BEGIN {
  printf "upload   %d MiB in %.2f s = %.0f MiB/s\n", s, u, s / u
  printf "download %d MiB in %.2f s = %.0f MiB/s (bytes verified)\n", s, d, s / d }'
