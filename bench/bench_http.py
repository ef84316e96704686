"""HTTP benchmark: the real gunicorn server, concurrent clients on loopback. Prints figures; never fails.

For 1 and 2 workers (GRADSTAB_TORCH_THREADS=1 each) it measures GET /livez, POST /v1/analyses
for a small spec (depth 10, width 64, batch 8) and for the lecture's depth-100 spec, with as
many clients as workers (no queueing, so latency − engine time is the service's overhead)
and with twice as many (throughput under load). Each run is bounded by a request count and
a time budget. The report cache and rate limit are switched off: every POST runs the engine (the
work budget stays on, as it is by default). The last lines give, per worker count, the small spec's
overhead over the engine at p50 with one client, beside the engine's own p50 and /livez's, measured in
the same run (issue 20 item 7: target at most 2 ms over the engine).

    .venv/bin/python bench/bench_http.py [--workers 1 2] [--seconds 8] [--requests 400]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"layers": {"depth": 10, "width": 64}, "batch_size": 8}
LECTURE = {"layers": {"depth": 100, "width": 4}, "activation": "identity", "init": "normal", "weight_scale": 1.0}


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def run(
    port: int, method: str, path: str, spec: dict | None, clients: int, max_requests: int, seconds: float
) -> Result:
    """`clients` threads send requests back to back until the count or the time budget runs out."""
    result, lock = Result(), threading.Lock()
    counter = iter(range(max_requests))
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            # A fresh seed per request: distinct specs, so no cache can answer for the engine.
            body = json.dumps(spec | {"seed": i}).encode() if spec is not None else None
            t0 = time.perf_counter()
            status, data = _request(port, method, path, body)
            ms = (time.perf_counter() - t0) * 1000.0
            with lock:
                if status != 200:
                    result.errors += 1
                    continue
                result.latencies_ms.append(ms)
                if spec is not None:
                    result.engine_ms.append(json.loads(data)["runtime"]["elapsed_ms"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.wall_s = time.perf_counter() - t0
    return result


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(workers: int) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = os.environ | {
        "PORT": str(port),
        "GRADSTAB_WORKERS": str(workers),
        "GRADSTAB_TORCH_THREADS": "1",
        "GRADSTAB_CACHE_SIZE": "0",
        "GRADSTAB_RATE_LIMIT": "off",
        "GRADSTAB_ACCESS_LOG": "1",
        "GRADSTAB_MAX_REQUESTS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if _request(port, "GET", "/readyz", None)[0] == 200:
                # every worker warms up before accepting, so one answer means all are up soon
                time.sleep(1.0)
                return proc, port
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=8.0, help="time budget per measurement")
    parser.add_argument("--requests", type=int, default=400, help="request budget per measurement")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}; latency in ms (client side, loopback)")
    header = (
        f"{'workers':>7} {'clients':>7} {'target':<16} {'n':>5} {'p50':>8} {'p99':>8} {'req/s':>8} "
        f"{'engine p50':>10} {'overhead p50':>12}"
    )
    print(header)
    summary = []
    for workers in args.workers:
        proc, port = start_server(workers)
        try:
            targets = [
                ("GET /livez", "GET", "/livez", None),
                ("POST small", "POST", "/v1/analyses", SMALL),
                ("POST depth-100", "POST", "/v1/analyses", LECTURE),
            ]
            for clients in (workers, 2 * workers):
                for name, method, path, spec in targets:
                    run(port, method, path, spec, clients, 2 * clients, 5.0)  # warm the path
                    r = run(port, method, path, spec, clients, args.requests, args.seconds)
                    p50 = _pct(r.latencies_ms, 0.5)
                    eng = _pct(r.engine_ms, 0.5) if r.engine_ms else float("nan")
                    over = (
                        statistics.median(a - b for a, b in zip(r.latencies_ms, r.engine_ms, strict=True))
                        if r.engine_ms
                        else float("nan")
                    )
                    rps = len(r.latencies_ms) / r.wall_s if r.wall_s else float("nan")
                    if clients == workers:
                        summary.append((workers, name, p50, eng, over))
                    err = f"  ({r.errors} errors)" if r.errors else ""
                    print(
                        f"{workers:>7} {clients:>7} {name:<16} {len(r.latencies_ms):>5} {p50:>8.2f} "
                        f"{_pct(r.latencies_ms, 0.99):>8.2f} {rps:>8.1f} {eng:>10.2f} {over:>12.2f}{err}",
                        flush=True,
                    )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    print("overhead p50: median over requests of (client latency − the engine's runtime.elapsed_ms)")
    for workers in args.workers:
        rows = {name: (p50, eng, over) for w, name, p50, eng, over in summary if w == workers}
        livez, small = rows["GET /livez"][0], rows["POST small"]
        print(
            f"{workers} worker(s), one client: POST small adds {small[2]:.2f} ms over the engine's {small[1]:.2f} ms "
            f"(x{small[2] / small[1]:.2f} of it; GET /livez {livez:.2f} ms, so {small[2] - livez:.2f} ms beyond it)"
        )


if __name__ == "__main__":
    main()
