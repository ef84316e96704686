"""Load and fault figures against a real gunicorn on loopback (issue 13, items 15-19). Bounded; prints
figures and never fails.

Scenarios, each its own server (2 sync workers, 1 torch thread each, no report cache, no rate limit):

- mixed:   clients posting small specs, 5 % heavy-but-allowed ones; a prober GETs the app's /livez and
           the master's probe port (GRADSTAB_PROBE_PORT) every 0.25 s.
- kill:    the same load; one worker is SIGKILLed halfway through.
- slow:    two connections trickle a body (as many as there are workers) while the prober runs.
- redis:   REDIS_URL points at a port that accepts and never answers (a hung Redis); small specs.

Per scenario: requests sent, answered, lost (no HTTP answer), 5xx, latency p50/p99 of the posts, and
/livez p50/p99/max for the app port and the probe port (a probe that times out counts as its timeout).

    .venv/bin/python bench/bench_faults.py [--seconds 20] [--clients 3] [--only mixed kill slow redis]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"layers": {"depth": 10, "width": 64}, "batch_size": 8}
HEAVY = {"layers": {"depth": 100, "width": 256}, "batch_size": 32, "jacobian": {"method": "exact"}}
PROBE_TIMEOUT_S = 10.0


@dataclass
class Figures:
    sent: int = 0
    answered: int = 0
    lost: int = 0
    errors_5xx: int = 0
    latencies_s: list[float] = field(default_factory=list)
    livez_app_s: list[float] = field(default_factory=list)
    livez_probe_s: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _request(port: int, method: str, path: str, body: dict | None, timeout: float) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def start(env_extra: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    port, probe = _free_port(), _free_port()
    env = (
        os.environ
        | {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "GRADSTAB_PROBE_PORT": str(probe),
            "GRADSTAB_WORKERS": "2",
            "GRADSTAB_TORCH_THREADS": "1",
            "GRADSTAB_CACHE_SIZE": "0",
            "GRADSTAB_RATE_LIMIT": "off",
            "GRADSTAB_ACCESS_LOG": "false",
            "OMP_NUM_THREADS": "1",
        }
        | env_extra
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if _request(port, "GET", "/readyz", None, 2) == 200:
                return proc, port, probe
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server not ready; see {log}")


def run_load(port: int, probe: int, seconds: float, clients: int, heavy_share: float, spec: dict) -> Figures:
    fig = Figures()
    stop = time.monotonic() + seconds
    rng = random.Random(0)

    def client(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            body = dict(HEAVY if rng.random() < heavy_share else spec, seed=i * 100_000 + n)
            n += 1
            started = time.monotonic()
            try:
                status = _request(port, "POST", "/v1/analyses", body, 120)
            except OSError:
                with fig.lock:
                    fig.sent += 1
                    fig.lost += 1
                continue
            with fig.lock:
                fig.sent += 1
                fig.answered += 1
                fig.errors_5xx += status >= 500
                fig.latencies_s.append(time.monotonic() - started)

    def prober() -> None:
        while time.monotonic() < stop:
            for target, out in ((port, fig.livez_app_s), (probe, fig.livez_probe_s)):
                started = time.monotonic()
                try:
                    _request(target, "GET", "/livez", None, PROBE_TIMEOUT_S)
                    out.append(time.monotonic() - started)
                except OSError:
                    out.append(PROBE_TIMEOUT_S)
            time.sleep(0.25)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)] + [threading.Thread(target=prober)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return fig


def workers_of(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def trickle(port: int, stop: threading.Event) -> None:
    """Headers, then one byte of a 10 kB body per second: holds a sync worker while it reads."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
        )
        while not stop.is_set():
            try:
                s.sendall(b" ")
            except OSError:
                return
            stop.wait(1.0)


def report(name: str, fig: Figures) -> None:
    print(
        f"{name:7s} sent {fig.sent:4d}  answered {fig.answered:4d}  lost {fig.lost:2d}  5xx {fig.errors_5xx:2d}  "
        f"post p50 {_pct(fig.latencies_s, 0.5):6.2f} s p99 {_pct(fig.latencies_s, 0.99):6.2f} s  "
        f"/livez app p50 {_pct(fig.livez_app_s, 0.5):5.2f} p99 {_pct(fig.livez_app_s, 0.99):5.2f} "
        f"max {max(fig.livez_app_s, default=float('nan')):5.2f} s  "
        f"probe port p50 {_pct(fig.livez_probe_s, 0.5):5.3f} p99 {_pct(fig.livez_probe_s, 0.99):5.3f} "
        f"max {max(fig.livez_probe_s, default=float('nan')):5.3f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["mixed", "kill", "slow", "redis"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))

    for name in args.only:
        extra: dict[str, str] = {}
        hung = None
        if name == "redis":
            hung = socket.socket()
            hung.bind(("127.0.0.1", 0))
            hung.listen(128)
            extra = {"REDIS_URL": f"redis://127.0.0.1:{hung.getsockname()[1]}/0", "GRADSTAB_CACHE_SIZE": "256"}
        proc, port, probe = start(extra, tmp / f"{name}.log")
        stop = threading.Event()
        side: list[threading.Thread] = []
        try:
            if name == "kill":

                def kill_one(master: int = proc.pid) -> None:
                    time.sleep(args.seconds / 2)
                    os.kill(workers_of(master)[0], signal.SIGKILL)

                side.append(threading.Thread(target=kill_one))
            if name == "slow":
                side += [threading.Thread(target=trickle, args=(port, stop)) for _ in range(2)]
            for t in side:
                t.start()
            heavy = 0.05 if name in ("mixed", "kill") else 0.0
            fig = run_load(port, probe, args.seconds, args.clients, heavy, SMALL)
            stop.set()
            for t in side:
                t.join(timeout=5)
            report(name, fig)
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            if hung is not None:
                hung.close()


if __name__ == "__main__":
    main()
