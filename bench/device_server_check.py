"""The real server on a GPU machine: 2 gunicorn workers, each with its own CUDA context, answering
device cuda, auto and cpu, and /v1/capabilities naming the GPU. Prints what it saw; exit 1 on a failure.

    python bench/device_server_check.py        (bench/device_check.sh runs it)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

WORKERS = 2
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body: dict[str, object] | None = None, timeout: float = 60) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def main() -> int:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "GRADSTAB_WORKERS": str(WORKERS), "GRADSTAB_TORCH_THREADS": "2"}
    env.pop("GRADSTAB_API_KEYS", None)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "service", "serve"], env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    ok = True
    try:
        while time.perf_counter() - start < 90:
            if proc.poll() is not None:
                print(f"server exited with {proc.returncode} before it was ready")
                return 1
            try:
                if call(base + "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            print("server not ready within 90 s")
            return 1
        print(f"ready after {time.perf_counter() - start:.1f} s with {WORKERS} workers")
        status, caps = call(base + "/v1/capabilities")
        print("capabilities:", status, json.dumps({k: v for k, v in caps.items() if "device" in k or "gpu" in k})[:400])
        big = {"layers": {"depth": 100, "width": 1024}, "activation": "relu", "init": "kaiming_normal"}
        tiny = {"layers": [4, 4, 4], "activation": "tanh"}
        pids = set()
        for name, body in (
            ("cuda", {**big, "device": "cuda"}),
            ("auto/large", {**big, "device": "auto"}),
            ("auto/tiny", {**tiny, "device": "auto"}),
            ("cpu", {**tiny, "device": "cpu"}),
            ("cuda again", {**big, "device": "cuda", "seed": 1}),
            ("cuda third", {**big, "device": "cuda", "seed": 2}),
        ):
            t0 = time.perf_counter()
            status, rep = call(base + "/v1/analyses", body)
            runtime = rep.get("runtime", {}) if isinstance(rep, dict) else {}
            assert isinstance(runtime, dict)
            print(
                f"{name:11s} -> {status} device={runtime.get('device')} name={runtime.get('device_name')} "
                f"{(time.perf_counter() - t0) * 1e3:.0f} ms verdict={rep.get('diagnosis', {}).get('verdict')}"
            )
            want = "cpu" if name in ("auto/tiny", "cpu") else "cuda"
            ok &= status == 200 and str(runtime.get("device", "")).startswith(want)
            pids.add(runtime.get("pid"))
        alive = proc.poll() is None
        print(f"server alive after the calls: {alive}")
        ok &= alive
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print("server check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
