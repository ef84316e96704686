"""gunicorn settings for the service, inside the package so an installed wheel has them.

    gunicorn -c python:service.gunicorn_conf service.wsgi:app     (what `python -m service serve` runs)
    gunicorn --config gunicorn.conf.py service.wsgi:app            (the image's CMD; that file re-exports this)

Every value comes from service.config.ServerSettings (environment variables with
defaults). The master never imports torch, numpy or the app (tests/test_server_workers.py
checks it): preload_app is off, OMP_NUM_THREADS/MKL_NUM_THREADS are in the environment before
any worker loads torch, torch's intra-op threads are set in post_fork, and each worker runs its
warm-up analysis before it takes requests. A worker that has not finished its warm-up within
GRADSTAB_WARM_UP_TIMEOUT seconds of its fork is killed by SIGALRM and replaced: gunicorn's own
timeout does not cover a worker before its first heartbeat.
gunicorn reads settings and server hooks by name from this module's namespace; `__all__`
lists them, so `from service.gunicorn_conf import *` carries every one.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from service.config import ServerSettings, gpu_for_worker, staggered_max_requests
from service.logs import JsonAccessLogger, logging_config

__all__ = [
    "accesslog",
    "bind",
    "child_exit",
    "control_socket_disable",
    "errorlog",
    "graceful_timeout",
    "keepalive",
    "logconfig_dict",
    "logger_class",
    "loglevel",
    "max_requests",
    "max_requests_jitter",
    "on_exit",
    "on_starting",
    "post_fork",
    "post_worker_init",
    "preload_app",
    "proc_name",
    "timeout",
    "when_ready",
    "worker_class",
    "worker_tmp_dir",
    "workers",
    "wsgi_app",
]

_server = ServerSettings.from_env()

wsgi_app = "service.wsgi:app"
bind = [f"[{_server.host}]:{_server.port}" if ":" in _server.host else f"{_server.host}:{_server.port}"]
workers = _server.workers
# CPU-bound requests: one at a time per worker, torch threads inside it. gunicorn's sync worker, with
# the answers it writes itself (bad request lines and headers, 414, 431, the worker timeout) as problem+json.
worker_class = "service.gunicorn_worker.ProblemWorker"
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
keepalive = _server.keepalive
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
preload_app = False  # torch + fork: nothing torch-related may happen before the fork
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
logger_class = JsonAccessLogger
logconfig_dict = logging_config(_server.log_level)
accesslog = "-" if _server.access_log else None
errorlog = "-"
loglevel = _server.log_level.lower()
proc_name = "gradstab"
control_socket_disable = True  # unused here; a shared default path would collide between servers

# Torch reads these when it loads (in the worker); workers x threads <= cores.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(_server.torch_threads))

# Prometheus multiprocess mode: must be in the environment before any worker imports
# prometheus_client. A directory we create is ours to wipe at start and remove at exit.
_PROM_OWNED = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _PROM_OWNED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gradstab-prometheus-")
_PROM_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

# Rate-limit counters without Redis: one SQLite file all workers share (service/api/ratelimit_sqlite.py),
# so a recycled worker does not reset them. A file we create is fresh per run and removed at exit.
_RATELIMIT_OWNED = "GRADSTAB_RATELIMIT_DB" not in os.environ
if _RATELIMIT_OWNED:
    _RATELIMIT_DIR = tempfile.mkdtemp(prefix="gradstab-ratelimit-")
    os.environ["GRADSTAB_RATELIMIT_DB"] = os.path.join(_RATELIMIT_DIR, "limits.sqlite3")


def on_starting(server: Any) -> None:
    """Drop samples a previous run left behind (they would be added to this run's)."""
    _PROM_DIR.mkdir(parents=True, exist_ok=True)
    for stale in _PROM_DIR.glob("*.db"):
        stale.unlink()
    server.log.info(
        "starting",
        extra={
            "workers": workers,
            "torch_threads": _server.torch_threads,
            "bind": bind[0],
            "prometheus_multiproc_dir": str(_PROM_DIR),
        },
    )


def when_ready(server: Any) -> None:
    """The master's own /livez on GRADSTAB_PROBE_PORT (service/probe.py), never queued behind analyses."""
    if _server.probe_port:
        from service.probe import start_probe

        start_probe(_server.host, _server.probe_port, lambda: len(server.WORKERS))
        server.log.info("liveness probe listening", extra={"probe_port": _server.probe_port})


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker, before it loads the app: stagger its recycling, arm the warm-up watchdog, then torch's
    threads."""
    if _server.max_requests > 0:  # keep gunicorn's jitter (worker.max_requests - cfg.max_requests) on top
        jitter = worker.max_requests - _server.max_requests
        base = staggered_max_requests(worker.age, _server.workers, _server.max_requests, _server.max_requests_jitter)
        worker.max_requests = base + jitter
    if _server.warm_up_timeout > 0:
        # The default action of SIGALRM ends the process even when it is stuck inside C code
        # (an OpenMP deadlock holds the GIL, so no Python handler or thread would ever run).
        # The arbiter logs "Worker (pid:…) was sent SIGALRM!" and forks a replacement.
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(_server.warm_up_timeout)
    if _server.gpus > 0:  # before torch loads: CUDA reads it once, when it initialises
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_for_worker(worker.age, _server.gpus))
    import torch  # first torch import of this process: after the fork, in the worker

    torch.set_num_threads(_server.torch_threads)


def post_worker_init(worker: Any) -> None:
    """Warm-up before the worker accepts connections, so /readyz means ready; then disarm the watchdog."""
    from service.api.health import warm_up

    try:
        warm_up(worker.wsgi)
    finally:
        signal.alarm(0)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (recycled, killed, timed out): fold its metric files into the archives."""
    from service.metrics_files import archive_dead_worker

    archive_dead_worker(_PROM_DIR, worker.pid)


def on_exit(server: Any) -> None:
    if _PROM_OWNED:
        shutil.rmtree(_PROM_DIR, ignore_errors=True)
    if _RATELIMIT_OWNED:
        shutil.rmtree(_RATELIMIT_DIR, ignore_errors=True)
