"""The gunicorn master stays free of torch, and workers with several torch threads boot and serve.

Issue 8: the master imported torch (config → schemas → engine) and a module ran a tensor op at
import, which started OpenMP's thread pool before the fork; every worker with 2+ torch threads then
deadlocked in its warm-up, and gunicorn never times out a worker before its first heartbeat.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers import ServerHandle, free_port, running_server

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4}
STARTUP_DEADLINE_S = 120
# With 2 torch threads a worker's first tanh analysis (theory's bisection for the critical σ_w²: ~11k
# tiny tensor ops) took 50-110 s on a 2-core box shared with other test runs, against 2 s with one
# thread: OpenMP's threads wait for cores. Generous, so a slow box is not mistaken for a hang.
MULTI_THREAD_DEADLINE_S = 400
HEAVY = ("torch", "numpy", "flask", "flask_smorest", "marshmallow", "prometheus_client", "service.api.app")


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_master_imports_neither_torch_nor_numpy_nor_flask(tmp_path):
    """What gunicorn's master imports: the config module (settings, hooks) and the WSGI module."""
    code = (
        "import sys, json, service.gunicorn_conf, service.wsgi\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


_FORK_AFTER_IMPORTS = """
import importlib, os, pkgutil, sys, time
import schemas, service
import torch
for package in (service, schemas):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
pid = os.fork()
if pid == 0:  # what a gunicorn worker does first: torch work with 2 threads
    torch.set_num_threads(2)
    torch.linalg.qr(torch.randn(512, 512, dtype=torch.float64))
    os._exit(0)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status))
    time.sleep(0.05)
os.kill(pid, 9)
os.waitpid(pid, 0)
sys.exit("the forked child hung in torch (an OpenMP pool started before the fork?)")
"""


def test_no_module_does_torch_work_at_import(tmp_path):
    """Import every module of service/ and schemas/, fork, and run multi-threaded torch in the child.

    A tensor op at import time (theory.py's quadrature grid was one) starts libgomp's pool in the
    parent; the child's first parallel region then deadlocks. This is the 10-line reproduction."""
    out = _python(_FORK_AFTER_IMPORTS, tmp_path, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return os.environ | {
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "GRADSTAB_CACHE_SIZE": "0",
        **extra,
    }


def _records(handle: ServerHandle) -> list[dict]:
    return [json.loads(line) for line in handle.log_text().splitlines() if line.strip().startswith("{")]


def test_two_workers_with_two_torch_threads_each_boot_and_serve(tmp_path):
    env = _env(tmp_path, GRADSTAB_WORKERS="2", GRADSTAB_TORCH_THREADS="2", GRADSTAB_WARM_UP_TIMEOUT="600")
    env.pop("OMP_NUM_THREADS", None)
    env.pop("MKL_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "service", "serve"]
    log_path = tmp_path / "server.log"
    with running_server(cmd, env, cwd=ROOT, log_path=log_path, deadline_s=MULTI_THREAD_DEADLINE_S) as server:
        deadline = time.monotonic() + MULTI_THREAD_DEADLINE_S
        while sum(r.get("message") == "warm-up done" for r in _records(server)) < 2:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.25)
        serving: set[int] = set()
        for seed in range(40):  # new connection each time: the kernel spreads them over both workers
            resp = requests.post(f"{server.url}/v1/analyses", json=SPEC | {"seed": seed}, timeout=60)
            assert resp.status_code == 200, resp.text
            assert resp.json()["runtime"]["threads"] == 2
            serving = {r["pid"] for r in _records(server) if r.get("message") == "analysis"}
            if len(serving) == 2:
                break
        assert len(serving) == 2, "both workers should have served an analysis"
    assert "SIGALRM" not in log_path.read_text()  # no worker needed the watchdog


def test_a_hung_warm_up_is_killed_and_the_worker_replaced(tmp_path):
    marker = tmp_path / "hung-worker-pid"
    env = _env(
        tmp_path,
        GRADSTAB_WORKERS="1",
        GRADSTAB_TORCH_THREADS="1",
        GRADSTAB_WARM_UP_TIMEOUT="20",
        GRADSTAB_TEST_HANG_MARKER=str(marker),
    )
    cmd = [sys.executable, "-m", "gunicorn", "--config", "python:service.gunicorn_conf", "tests.hang_wsgi:app"]
    log_path = tmp_path / "server.log"
    with running_server(cmd, env, cwd=ROOT, log_path=log_path, deadline_s=STARTUP_DEADLINE_S) as server:
        hung = int(marker.read_text())
        ready = requests.get(f"{server.url}/readyz", timeout=30).json()
        assert ready["status"] == "ready" and ready["pid"] != hung
        resp = requests.post(f"{server.url}/v1/analyses", json=SPEC, timeout=60)
        assert resp.status_code == 200, resp.text
    log = log_path.read_text()
    assert f"Worker (pid:{hung}) was sent SIGALRM!" in log, log


@pytest.mark.parametrize("value", ["0", "7"])
def test_warm_up_timeout_setting(value):
    from service.config import ServerSettings

    assert ServerSettings.from_env({"GRADSTAB_WARM_UP_TIMEOUT": value}).warm_up_timeout == int(value)
    assert ServerSettings.from_env({}).warm_up_timeout == 300
