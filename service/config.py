"""Typed settings from environment variables, each with a documented default.

`Settings` is what the Flask app needs; `ServerSettings` is what service/gunicorn_conf.py and
`python -m service serve` need. Neither imports torch, so the gunicorn master can read them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas.limits import Limits


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise ValueError(f"{name}={value} is below its minimum {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


@dataclass(frozen=True)
class Settings:
    """The app's settings. Request limits (GRADSTAB_MAX_*) come from `Limits.from_env`."""

    limits: Limits = field(default_factory=Limits)
    # GRADSTAB_MAX_JSON_DEPTH: deepest nesting of a request body (a spec needs 3).
    max_json_depth: int = 32
    # GRADSTAB_LOG_LEVEL: level of the service's own loggers.
    log_level: str = "INFO"
    # GRADSTAB_WARM_UP: run the warm-up analysis inside create_app (gunicorn runs it per
    # worker in post_worker_init instead, so the default is off).
    warm_up: bool = False
    # GRADSTAB_TRUSTED_PROXIES: reverse proxies in front of the service whose X-Forwarded-For,
    # -Proto and -Host headers are believed (werkzeug's ProxyFix). 0 trusts none: a client could
    # otherwise pick its own address, and with it its own rate-limit bucket.
    trusted_proxies: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            limits=Limits.from_env(dict(env)),
            max_json_depth=_int(env, "GRADSTAB_MAX_JSON_DEPTH", cls.max_json_depth, minimum=3),
            log_level=(_get(env, "GRADSTAB_LOG_LEVEL") or cls.log_level).upper(),
            warm_up=_bool(env, "GRADSTAB_WARM_UP", cls.warm_up),
            trusted_proxies=_int(env, "GRADSTAB_TRUSTED_PROXIES", cls.trusted_proxies),
        )


SETTINGS_ENV = {
    "max_json_depth": "GRADSTAB_MAX_JSON_DEPTH",
    "log_level": "GRADSTAB_LOG_LEVEL",
    "warm_up": "GRADSTAB_WARM_UP",
    "trusted_proxies": "GRADSTAB_TRUSTED_PROXIES",
}


CGROUP_V2_CPU_MAX = "/sys/fs/cgroup/cpu.max"
# cgroup v1 mounts the cpu controller as cpu/ or as cpu,cpuacct/ (cpu/ is often a link to it).
CGROUP_V1_DIRS = ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota_cpus(quota: str, period: str) -> int | None:
    """ceil(quota / period), at least 1; None for no limit ("max", -1) or unreadable values."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def cgroup_cpu_limit(
    cpu_max: str = CGROUP_V2_CPU_MAX,
    v1_dirs: Sequence[str] = CGROUP_V1_DIRS,
) -> int | None:
    """The CPU quota of the cgroup (a container's `--cpus`), rounded up, or None when unlimited.

    cgroup v2: `cpu.max` holds "max 100000" (no limit) or "200000 100000" (2 CPUs). cgroup v1:
    `cpu.cfs_quota_us` (-1: no limit) over `cpu.cfs_period_us`, in the first of `v1_dirs` that
    has them. Missing or malformed files count as no limit."""
    text = _read(cpu_max)
    if text is not None:
        parts = text.split()
        if parts and parts[0] != "max":
            return _quota_cpus(parts[0], parts[1] if len(parts) > 1 else "100000")
        return None
    for directory in v1_dirs:
        quota = _read(os.path.join(directory, "cpu.cfs_quota_us"))
        period = _read(os.path.join(directory, "cpu.cfs_period_us"))
        if quota is not None and period is not None:
            return _quota_cpus(quota, period)
    return None


def usable_cpus(
    cpu_max: str = CGROUP_V2_CPU_MAX,
    v1_dirs: Sequence[str] = CGROUP_V1_DIRS,
) -> int:
    """CPUs this process may use: min(CPU affinity, cgroup quota), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cpu_max, v1_dirs)
    return max(1, min(cpus, quota) if quota is not None else cpus)


@dataclass(frozen=True)
class ServerSettings:
    """gunicorn's settings. Defaults keep workers × torch threads ≤ the usable CPUs
    (`usable_cpus`: the CPU affinity, capped by a container's cgroup CPU quota)."""

    host: str = "127.0.0.1"  # HOST
    port: int = 8000  # PORT
    workers: int = 1  # WEB_CONCURRENCY or GRADSTAB_WORKERS; default min(cores, 4)
    torch_threads: int = 1  # GRADSTAB_TORCH_THREADS; default cores // workers
    timeout: int = 120  # GRADSTAB_TIMEOUT: above the largest analysis the limits allow
    graceful_timeout: int = 30  # GRADSTAB_GRACEFUL_TIMEOUT
    keepalive: int = 5  # GRADSTAB_KEEPALIVE
    max_requests: int = 1000  # GRADSTAB_MAX_REQUESTS (0: never recycle workers)
    max_requests_jitter: int = 100  # GRADSTAB_MAX_REQUESTS_JITTER
    access_log: bool = True  # GRADSTAB_ACCESS_LOG
    log_level: str = "INFO"  # GRADSTAB_LOG_LEVEL
    # GRADSTAB_WARM_UP_TIMEOUT: seconds from fork until a worker has finished its warm-up (torch
    # import, app, warm-up analysis) before a watchdog kills it (0: no watchdog). gunicorn's own
    # timeout only starts counting at a worker's first heartbeat, after the warm-up.
    warm_up_timeout: int = 120

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cpus: int | None = None) -> ServerSettings:
        """`cpus` overrides the detected `usable_cpus()` (tests)."""
        env = os.environ if environ is None else environ
        cores = usable_cpus() if cpus is None else max(1, cpus)
        workers_var = "WEB_CONCURRENCY" if _get(env, "WEB_CONCURRENCY") else "GRADSTAB_WORKERS"
        if _get(env, workers_var) is not None:
            workers = _int(env, workers_var, 1, minimum=1)
        elif _get(env, "GRADSTAB_TORCH_THREADS") is not None:
            workers = max(1, cores // _int(env, "GRADSTAB_TORCH_THREADS", 1, minimum=1))
        else:
            workers = max(1, min(cores, 4))
        threads = _int(env, "GRADSTAB_TORCH_THREADS", max(1, cores // workers), minimum=1)
        return cls(
            host=_get(env, "HOST") or cls.host,
            port=_int(env, "PORT", cls.port, minimum=0),
            workers=workers,
            torch_threads=threads,
            timeout=_int(env, "GRADSTAB_TIMEOUT", cls.timeout, minimum=1),
            graceful_timeout=_int(env, "GRADSTAB_GRACEFUL_TIMEOUT", cls.graceful_timeout),
            keepalive=_int(env, "GRADSTAB_KEEPALIVE", cls.keepalive),
            max_requests=_int(env, "GRADSTAB_MAX_REQUESTS", cls.max_requests),
            max_requests_jitter=_int(env, "GRADSTAB_MAX_REQUESTS_JITTER", cls.max_requests_jitter),
            access_log=_bool(env, "GRADSTAB_ACCESS_LOG", cls.access_log),
            log_level=(_get(env, "GRADSTAB_LOG_LEVEL") or cls.log_level).upper(),
            warm_up_timeout=_int(env, "GRADSTAB_WARM_UP_TIMEOUT", cls.warm_up_timeout),
        )
