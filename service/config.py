"""One settings object, read once from the environment: the app, the server, the limits, the
autograder. Every variable has a default here and a line in README.md's Deployment table.

`Settings.from_env()` is the only reader of the environment (the gunicorn master calls it for
`Settings.server`; `create_app` for the rest), and the helpers below its only parsers. Nothing
here imports torch, numpy or Flask, so the gunicorn master can read it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from schemas.limits import ADMIT_MARGIN, Limits
from service.jobs.settings import JobSettings

DEFAULT_RATE_LIMIT = "120/minute"
DEFAULT_COURSE_RATE_LIMIT = "1200/minute"  # per key, all its students together
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


# --------------------------------------------------------------------------- env helpers


def _get(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when unset or empty."""
    value = env.get(name)
    value = value.strip() if isinstance(value, str) else value
    return value if value not in (None, "") else None


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return _get(env, name) or default


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


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a float") from exc


def draw_cache_mib(env: Mapping[str, str] | None = None) -> int:
    """GRADSTAB_DRAW_CACHE_MIB (default 128): read here for the API's workers and the jobs worker alike."""
    return _int(os.environ if env is None else env, "GRADSTAB_DRAW_CACHE_MIB", Settings.draw_cache_mib)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def _limits(env: Mapping[str, str]) -> Limits:
    """GRADSTAB_MAX_DEPTH etc. (`Limits.env_name`); unset variables keep the defaults."""
    values: dict[str, float | int] = {}
    for f in fields(Limits):
        default = getattr(Limits, f.name)
        parse = _int if isinstance(default, int) else _float
        values[f.name] = parse(env, Limits.env_name(f.name), default)
    return Limits(**values)


# --------------------------------------------------------------------------- CPUs

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


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ServerSettings:
    """gunicorn's settings. Defaults keep workers × torch threads ≤ the usable CPUs
    (`usable_cpus`: the CPU affinity, capped by a container's cgroup CPU quota)."""

    host: str = "127.0.0.1"  # HOST
    port: int = 8000  # PORT
    workers: int = 1  # WEB_CONCURRENCY or GRADSTAB_WORKERS; default min(cores, 4)
    torch_threads: int = 1  # GRADSTAB_TORCH_THREADS; default cores // workers
    timeout: int = 120  # GRADSTAB_TIMEOUT: above the largest analysis the limits allow
    # GRADSTAB_REQUEST_DEADLINE: seconds after which a request's work stops with a 503 problem+json
    # (service/application/deadline.py), before the worker timeout kills the worker; 0: none.
    # Default: GRADSTAB_TIMEOUT less a tenth (at least 5 s).
    request_deadline: float = 108.0
    graceful_timeout: int = 30  # GRADSTAB_GRACEFUL_TIMEOUT
    keepalive: int = 5  # GRADSTAB_KEEPALIVE
    max_requests: int = 1000  # GRADSTAB_MAX_REQUESTS (0: never recycle workers)
    max_requests_jitter: int = 100  # GRADSTAB_MAX_REQUESTS_JITTER
    access_log: bool = True  # GRADSTAB_ACCESS_LOG
    log_level: str = "INFO"  # GRADSTAB_LOG_LEVEL
    # GRADSTAB_WARM_UP_TIMEOUT: seconds from fork until a worker has finished its warm-up (torch
    # import, app, warm-up analysis) before a watchdog kills it (0: no watchdog). gunicorn's own
    # timeout only starts counting at a worker's first heartbeat, after the warm-up.
    warm_up_timeout: int = 300
    # GRADSTAB_GPUS: GPUs to spread the workers over (0: leave CUDA_VISIBLE_DEVICES as it is, so every
    # worker sees every GPU and uses the first). With N > 0, worker k (gunicorn's age counter) gets
    # CUDA_VISIBLE_DEVICES=k mod N before it loads torch: its own CUDA context on one GPU.
    gpus: int = 0
    # GRADSTAB_PROBE_PORT: a port on which the gunicorn master itself answers GET /livez (0: none). The
    # app's /livez waits behind analyses when every sync worker is busy; the master's never does, and
    # it answers 200 while it has live workers (its arbiter replaces any that hang past the timeout).
    probe_port: int = 0
    # GRADSTAB_PUBLIC_URL: the service's public root (https://gradstab.example.edu): problem `type` URIs are built on
    # it, and resolve to their pages. Empty: tag: URIs. Never the request's Host header, which the client picks.
    public_url: str = ""

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
        timeout = _int(env, "GRADSTAB_TIMEOUT", cls.timeout, minimum=1)
        request_deadline = _float(env, "GRADSTAB_REQUEST_DEADLINE", max(0.5, timeout - max(5, timeout / 10)))
        if request_deadline >= timeout:
            raise ValueError(f"GRADSTAB_REQUEST_DEADLINE={request_deadline:g} must be below GRADSTAB_TIMEOUT={timeout}")
        return cls(
            host=_str(env, "HOST", cls.host),
            port=_int(env, "PORT", cls.port, minimum=0),
            workers=workers,
            torch_threads=threads,
            timeout=timeout,
            request_deadline=max(0.0, request_deadline),
            graceful_timeout=_int(env, "GRADSTAB_GRACEFUL_TIMEOUT", cls.graceful_timeout),
            keepalive=_int(env, "GRADSTAB_KEEPALIVE", cls.keepalive),
            max_requests=_int(env, "GRADSTAB_MAX_REQUESTS", cls.max_requests),
            max_requests_jitter=_int(env, "GRADSTAB_MAX_REQUESTS_JITTER", cls.max_requests_jitter),
            access_log=_bool(env, "GRADSTAB_ACCESS_LOG", cls.access_log),
            log_level=_str(env, "GRADSTAB_LOG_LEVEL", cls.log_level).upper(),
            warm_up_timeout=_int(env, "GRADSTAB_WARM_UP_TIMEOUT", cls.warm_up_timeout),
            gpus=_int(env, "GRADSTAB_GPUS", cls.gpus),
            probe_port=_int(env, "GRADSTAB_PROBE_PORT", cls.probe_port),
            public_url=_public_url(env),
        )


def server_limits(limits: Limits, server: ServerSettings) -> Limits:
    """The limits a server admits by: unless GRADSTAB_MAX_SECONDS is set, a predicted time of at most
    ADMIT_MARGIN of its request deadline (of its worker timeout where it has none)."""
    seconds = limits.max_seconds or round(ADMIT_MARGIN * (server.request_deadline or server.timeout), 3)
    return replace(limits, max_seconds=seconds)


def _public_url(env: Mapping[str, str]) -> str:
    url = _str(env, "GRADSTAB_PUBLIC_URL", "").rstrip("/")
    if url and not url.startswith(("https://", "http://")):
        raise ValueError(f"GRADSTAB_PUBLIC_URL={url!r} is not an absolute http(s) URL")
    return url


def staggered_max_requests(age: int, workers: int, max_requests: int, jitter: int) -> int:
    """Requests before worker number `age` (gunicorn's counter: 1, 2, … as it forks them) is recycled, less its
    jitter. gunicorn gives every worker max_requests plus a random 0..jitter; workers that share the load evenly
    then all reach it within the jitter of one another and recycle together (issue 20: two workers 5.4 s apart,
    a request waiting 10 s meanwhile). The first `workers` workers start max_requests / workers apart instead;
    each replacement counts from its own start, so recycles stay that far apart (one every max_requests /
    workers requests per worker), well beyond the jitter."""
    if max_requests <= 0 or workers <= 1 or age > workers:
        return max_requests
    return max_requests + (age - 1) * (max_requests // workers)


def gpu_for_worker(age: int, gpus: int) -> int:
    """The GPU of gunicorn's worker number `age` (1, 2, … as it forks them): workers take the GPUs in turn."""
    return (age - 1) % gpus


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment, once."""

    limits: Limits = field(default_factory=Limits)  # GRADSTAB_MAX_* and GRADSTAB_AUTO_EXACT_GFLOP
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
    # The autograder: GRADSTAB_API_KEYS ("name:key[:role],..."), GRADSTAB_API_KEYS_FILE,
    # GRADSTAB_RATE_LIMIT (None: "off"), REDIS_URL (shared rate-limit counters and report cache),
    # GRADSTAB_CACHE_SIZE (in-process entries; 0: no cache at all), GRADSTAB_CACHE_TTL (seconds
    # in Redis; 0: no expiry), GRADSTAB_ASSIGNMENTS_DIR (assignment files; None: no assignments).
    api_keys: str = ""
    api_keys_file: str = ""
    rate_limit: str | None = DEFAULT_RATE_LIMIT
    course_rate_limit: str | None = DEFAULT_COURSE_RATE_LIMIT  # GRADSTAB_COURSE_RATE_LIMIT
    # GRADSTAB_WORK_LIMIT: estimated GFLOP of analyses (cache misses) per caller and window ("off": none).
    work_limit: str | None = "20000/minute"
    redis_url: str | None = None
    # GRADSTAB_AUTH_FAIL_LIMIT: failed authentications (401) per client address and presented key before that key
    # gets 429 from there; GRADSTAB_AUTH_FAIL_ADDRESS_LIMIT: per address over all keys, before every key not yet
    # known from that address gets 429 ("off": none). service/api/ratelimit.py guard_failed_auth.
    auth_fail_limit: str | None = "10/minute"
    auth_fail_address_limit: str | None = "100/minute"
    cache_size: int = 256
    # GRADSTAB_CACHE_SHARE_STUDENTS: serve student keys from reports other callers put in the cache (off: a student
    # key's first request for a spec runs the engine, so its timing reveals nothing; service/api/cache_hint.py).
    cache_share_students: bool = False
    # GRADSTAB_METRICS_KEY_NAMES: label metrics with API key names (off: with the key's role); GRADSTAB_METRICS_TOKEN:
    # a bearer token GET /metrics requires (empty: none; the compose front does not serve /metrics at all).
    metrics_key_names: bool = False
    # GRADSTAB_BODY_TIMEOUT: seconds a client has to send its whole request body; past it 408 (0: no limit but the
    # request deadline). service/api/bodylimit.py.
    body_timeout_s: float = 2.0
    metrics_token: str = ""
    cache_ttl_s: int = 7 * 24 * 3600
    # GRADSTAB_CACHE_MAX_MIB: the in-process report cache's size in MiB of report JSON per worker.
    cache_max_mib: int = 64
    # GRADSTAB_DRAW_CACHE_MIB: unit weight draws kept per worker for the next analysis of the same layers
    # (recommendation reruns, sweeps, variations of one network); 0: none (service/engine/draws.py).
    draw_cache_mib: int = 128
    # GRADSTAB_REDIS_TIMEOUT: seconds a Redis call (rate limits, report cache) may take; GRADSTAB_REDIS_RETRY:
    # seconds the report cache skips Redis after a failed call (service/application/breaker.py).
    # GRADSTAB_RATELIMIT_DB: SQLite file of the rate-limit counters without REDIS_URL, shared by one server's
    # workers (service/api/ratelimit_sqlite.py); the gunicorn master sets a fresh one per run. None: in memory.
    ratelimit_db: str | None = None
    redis_timeout_s: float = 0.5
    redis_retry_s: float = 30.0
    assignments_dir: str | None = None
    # /openapi.json's info.contact: GRADSTAB_CONTACT_NAME, GRADSTAB_CONTACT_URL, GRADSTAB_CONTACT_EMAIL (who runs it).
    contact_name: str = "The operators of this server"
    contact_url: str | None = None
    contact_email: str | None = None
    server: ServerSettings = field(default_factory=ServerSettings)  # gunicorn's (HOST, PORT, workers…)
    jobs: JobSettings = field(default_factory=JobSettings)  # REDIS_URL, GRADSTAB_JOB_* (service/jobs/settings.py)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cpus: int | None = None) -> Settings:
        env = os.environ if environ is None else environ
        rate_limit = _str(env, "GRADSTAB_RATE_LIMIT", DEFAULT_RATE_LIMIT)
        course_rate_limit = _str(env, "GRADSTAB_COURSE_RATE_LIMIT", DEFAULT_COURSE_RATE_LIMIT)
        auth_fail_limit = _str(env, "GRADSTAB_AUTH_FAIL_LIMIT", cls.auth_fail_limit or "off")
        auth_fail_address_limit = _str(env, "GRADSTAB_AUTH_FAIL_ADDRESS_LIMIT", cls.auth_fail_address_limit or "off")
        work_limit = _str(env, "GRADSTAB_WORK_LIMIT", "20000/minute")
        server = ServerSettings.from_env(env, cpus)
        return cls(
            limits=server_limits(_limits(env), server),
            max_json_depth=_int(env, "GRADSTAB_MAX_JSON_DEPTH", cls.max_json_depth, minimum=3),
            log_level=_str(env, "GRADSTAB_LOG_LEVEL", cls.log_level).upper(),
            warm_up=_bool(env, "GRADSTAB_WARM_UP", cls.warm_up),
            trusted_proxies=_int(env, "GRADSTAB_TRUSTED_PROXIES", cls.trusted_proxies),
            api_keys=_str(env, "GRADSTAB_API_KEYS", ""),
            api_keys_file=_str(env, "GRADSTAB_API_KEYS_FILE", ""),
            rate_limit=None if rate_limit.lower() in ("off", "none", "0") else rate_limit,
            course_rate_limit=None if course_rate_limit.lower() in ("off", "none", "0") else course_rate_limit,
            redis_url=_get(env, "REDIS_URL"),
            auth_fail_limit=None if auth_fail_limit.lower() in ("off", "none", "0") else auth_fail_limit,
            auth_fail_address_limit=None
            if auth_fail_address_limit.lower() in ("off", "none", "0")
            else auth_fail_address_limit,
            work_limit=None if work_limit.lower() in ("off", "none", "0") else work_limit,
            cache_size=_int(env, "GRADSTAB_CACHE_SIZE", cls.cache_size),
            cache_share_students=_bool(env, "GRADSTAB_CACHE_SHARE_STUDENTS", cls.cache_share_students),
            metrics_key_names=_bool(env, "GRADSTAB_METRICS_KEY_NAMES", cls.metrics_key_names),
            body_timeout_s=_float(env, "GRADSTAB_BODY_TIMEOUT", cls.body_timeout_s),
            metrics_token=_str(env, "GRADSTAB_METRICS_TOKEN", cls.metrics_token),
            cache_ttl_s=_int(env, "GRADSTAB_CACHE_TTL", cls.cache_ttl_s),
            cache_max_mib=_int(env, "GRADSTAB_CACHE_MAX_MIB", cls.cache_max_mib, minimum=1),
            draw_cache_mib=draw_cache_mib(env),
            ratelimit_db=_get(env, "GRADSTAB_RATELIMIT_DB"),
            redis_timeout_s=_float(env, "GRADSTAB_REDIS_TIMEOUT", cls.redis_timeout_s),
            redis_retry_s=_float(env, "GRADSTAB_REDIS_RETRY", cls.redis_retry_s),
            assignments_dir=_get(env, "GRADSTAB_ASSIGNMENTS_DIR"),
            contact_name=_str(env, "GRADSTAB_CONTACT_NAME", cls.contact_name),
            contact_url=_get(env, "GRADSTAB_CONTACT_URL"),
            contact_email=_get(env, "GRADSTAB_CONTACT_EMAIL"),
            server=server,
            jobs=JobSettings.from_env(env),
        )
