#!/usr/bin/env python3
"""Start-up time (process spawn -> first GET /health 200) and idle RSS of ferroflow.

Each trial: spawn `BIN server ...` on a free port, poll GET /health over a raw socket every 1 ms
(from just after spawn), record the time of the first 200, wait --settle seconds with no traffic,
read VmRSS/VmHWM from /proc/PID/status, then SIGTERM (SIGKILL after 5 s).
Trial 1 uses a fresh SQLite file (start-up includes applying the migrations); the following
trials reuse it (warm start on an existing store). Each result line is also printed as key=value.

Usage: startup.py BIN WORKDIR [--trials 5] [--settle 2]
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = v.strip()
    return out


def kb(v: str) -> float:
    return int(v.split()[0]) / 1024.0  # "12345 kB" -> MiB


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("workdir")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    db = os.path.abspath(os.path.join(a.workdir, "startup.db"))
    arts = os.path.abspath(os.path.join(a.workdir, "artifacts"))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    results = []
    for trial in range(1, a.trials + 1):
        port = free_port()
        cmd = [a.bin, "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", arts]
        log = open(os.path.join(a.workdir, f"startup-{trial}.log"), "wb")
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                if health_ok(port):
                    dt = time.perf_counter() - t0
                    break
                if p.poll() is not None:
                    print(f"server exited with {p.returncode}; see {log.name}", file=sys.stderr)
                    return 1
                if time.perf_counter() - t0 > a.timeout:
                    print("timeout waiting for /health", file=sys.stderr)
                    return 1
                time.sleep(0.001)
            time.sleep(a.settle)
            st = proc_status(p.pid)
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        kind = "fresh-db" if trial == 1 else "existing-db"
        results.append((kind, dt, kb(st["VmRSS"]), kb(st["VmHWM"]), st["Threads"]))
        print(f"trial {trial} ({kind}): start-up {dt * 1000:.1f} ms, idle VmRSS {kb(st['VmRSS']):.1f} MiB "
              f"(VmHWM {kb(st['VmHWM']):.1f} MiB, {st['Threads']} threads)", flush=True)
    warm = [r for r in results if r[0] == "existing-db"] or results
    print(f"startup_fresh_ms={results[0][1] * 1000:.1f}")
    print(f"startup_warm_median_ms={statistics.median(r[1] for r in warm) * 1000:.1f}")
    print(f"startup_max_ms={max(r[1] for r in results) * 1000:.1f}")
    print(f"idle_rss_median_mib={statistics.median(r[2] for r in results):.1f}")
    print(f"idle_rss_max_mib={max(r[2] for r in results):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
