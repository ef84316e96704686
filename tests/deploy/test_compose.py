"""docker-compose.yml against the Compose Specification schema, plus what the schema cannot
say: which services each profile starts, healthchecks, the GPU reservation, the scaled set
and its proxy, and environment defaults that agree with the code.

Why: `docker compose` is not installed in CI, and a compose file that is valid YAML but
starts the wrong services, or silently overrides a code default, only shows in production.
The schema is vendored (deploy/compose-spec.json, see deploy/VENDORED.md): no network.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas.limits import Limits
from tests.deploy.support import (
    COMPOSE_FILE,
    COMPOSE_SCHEMA,
    NGINX_CONF,
    REPO,
    default_of,
    interpolate,
)

RAW: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
DOC: dict[str, Any] = interpolate(RAW, {})  # as `docker compose config` sees it, no .env
SERVICES: dict[str, Any] = DOC["services"]
RAW_SERVICES: dict[str, Any] = RAW["services"]
SCHEMA: dict[str, Any] = __import__("json").loads(COMPOSE_SCHEMA.read_text())

# Sources that read configuration from the environment.
CODE_TEXT = "\n".join(
    p.read_text()
    for p in [*REPO.glob("service/**/*.py"), *REPO.glob("schemas/**/*.py"), REPO / "gunicorn.conf.py"]
    if p.exists()
)


def _profile(name: str) -> dict[str, Any]:
    return {k: v for k, v in SERVICES.items() if name in v.get("profiles", [])}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


def _mib(size: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", size.strip().lower())
    assert m, size
    return float(m[1]) * {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024}[m[2]]


def test_vendored_schema_is_the_recorded_one() -> None:
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert digest in (REPO / "deploy" / "VENDORED.md").read_text(), digest


@pytest.mark.parametrize("document", [RAW, DOC], ids=["raw", "interpolated"])
def test_valid_against_the_compose_spec(document: dict[str, Any]) -> None:
    validator_class = jsonschema.validators.validator_for(SCHEMA)
    validator_class.check_schema(SCHEMA)
    errors = sorted(validator_class(SCHEMA).iter_errors(document), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_no_version_key_and_every_interpolation_has_a_default() -> None:
    assert "version" not in RAW
    text = COMPOSE_FILE.read_text()
    bare = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", text)
    assert not bare, f"variables without a default: {bare}"


def test_default_profile_starts_the_api_behind_a_buffering_proxy() -> None:
    """Issue 13, item 16: sync workers never face clients directly; nginx buffers and times out slow ones."""
    assert [k for k, v in SERVICES.items() if not v.get("profiles")] == ["api", "front"]
    front = SERVICES["front"]
    assert front["ports"] == ["8000:8080"] and "ports" not in SERVICES["api"]
    assert "./deploy/nginx-api.conf:/etc/nginx/nginx.conf:ro" in front["volumes"]
    assert front["depends_on"]["api"]["condition"] == "service_healthy"
    generated = NGINX_CONF.with_name("nginx-api.conf").read_text()
    body = lambda text: text.split("worker_processes", 1)[1]  # noqa: E731 (past the header comment)
    assert body(generated) == body(NGINX_CONF.read_text()).replace("server api-replica:8000", "server api:8000")


def test_proxy_times_out_slow_clients_and_hides_metrics() -> None:
    conf = _nginx()
    for directive in ("client_header_timeout", "client_body_timeout"):
        found = re.search(rf"\b{directive}\s+(\d+)s\s*;", conf)
        assert found and int(found[1]) <= 10, directive
    assert not re.search(r"proxy_request_buffering\s+off", conf)
    metrics = re.search(r"location\s*=\s*/metrics\s*\{([^}]*)\}", conf)
    assert metrics and "proxy_pass" not in metrics[1] and re.search(r"return\s+404", metrics[1])
    assert re.search(r"error_page\s+413\s*=\s*@too_large", conf) and "application/problem+json" in conf


def test_api_service_contract() -> None:
    api = SERVICES["api"]
    assert api["build"]["context"] == "." and api["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
    assert api["build"].get("args", {}).get("TORCH_VARIANT", "cpu") == "cpu"
    assert api["restart"] == "unless-stopped"
    limits = api["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and _mib(limits["memory"]) > 0
    assert api["environment"]["HOST"] == "0.0.0.0"


def test_api_healthchecks_probe_readyz_with_python() -> None:
    for name, service in SERVICES.items():
        if name.startswith("api"):
            test = service["healthcheck"]["test"]
            assert test[0] == "CMD" and test[1] == "python", (name, test)
            assert "/readyz" in test and not {"curl", "wget"} & set(test), (name, test)
            assert (REPO / test[2]).is_file()


def test_environment_is_configurable_with_defaults() -> None:
    """Limits, workers, threads, auth and Redis are ${VAR:-default}, defaults = code's."""
    env = RAW_SERVICES["api"]["environment"]
    required = {Limits.env_name(name) for name in Limits().as_dict()} | {
        "GRADSTAB_WORKERS",
        "GRADSTAB_TORCH_THREADS",
        "GRADSTAB_TIMEOUT",
        "GRADSTAB_API_KEYS",
        "GRADSTAB_API_KEYS_FILE",
        "GRADSTAB_RATE_LIMIT",
        "GRADSTAB_CACHE_SIZE",
        "GRADSTAB_CACHE_TTL",
        "GRADSTAB_ASSIGNMENTS_DIR",
        "REDIS_URL",
    }
    missing = required - env.keys()
    assert not missing, f"not configurable in docker-compose.yml: {sorted(missing)}"
    for name in required:
        assert default_of(str(env[name])) is not None, f"{name}: {env[name]!r} is not ${{{name}:-…}}"
    for name, value in Limits().as_dict().items():
        default = default_of(env[Limits.env_name(name)])
        assert float(default) == float(value), f"{Limits.env_name(name)}: {default} != code {value}"


def test_server_defaults_match_the_code() -> None:
    from service.config import ServerSettings

    env = SERVICES["api"]["environment"]
    code = ServerSettings()
    assert int(env["GRADSTAB_TIMEOUT"]) == code.timeout
    assert int(env["GRADSTAB_GRACEFUL_TIMEOUT"]) == code.graceful_timeout
    assert env["GRADSTAB_LOG_LEVEL"] == code.log_level
    # docker stop waits stop_grace_period before SIGKILL: longer than gunicorn's graceful stop.
    assert _seconds(SERVICES["api"]["stop_grace_period"]) > code.graceful_timeout


def test_autograder_defaults_match_the_code() -> None:
    from service.config import Settings

    env = SERVICES["api"]["environment"]
    code = Settings.from_env({})
    assert env["GRADSTAB_API_KEYS"] == code.api_keys and env["GRADSTAB_API_KEYS_FILE"] == code.api_keys_file
    assert env["GRADSTAB_RATE_LIMIT"] == code.rate_limit
    assert int(env["GRADSTAB_CACHE_SIZE"]) == code.cache_size
    assert int(env["GRADSTAB_CACHE_TTL"]) == code.cache_ttl_s
    assert (env["REDIS_URL"] or None) == code.redis_url
    assert (env["GRADSTAB_ASSIGNMENTS_DIR"] or None) == code.assignments_dir


def test_assignments_folder_is_mounted_read_only() -> None:
    """The root filesystem is read-only, so assignment files can only come from a mount."""
    for name, service in SERVICES.items():
        if name.startswith("api"):
            (mount,) = [v for v in service["volumes"] if isinstance(v, dict) and v["target"] == "/srv/assignments"]
            assert mount["type"] == "bind" and mount["read_only"] is True
            assert (REPO / mount["source"]).is_dir()


def test_every_variable_passed_is_read_by_the_code() -> None:
    """A misspelt variable would be silently ignored by the service."""
    for name in SERVICES["api"]["environment"]:
        assert f'"{name}"' in CODE_TEXT or name in {Limits.env_name(f) for f in Limits().as_dict()}, (
            f"{name} is set in docker-compose.yml but no code reads it"
        )


def test_cpu_and_memory_limits_fit_the_workers() -> None:
    """workers × torch threads ≤ cpus (set explicitly, though the code's defaults honour the limit) and
    memory ≥ workers × (GRADSTAB_MAX_MEMORY_MIB + ~512 MiB for torch and the app)."""
    for name, service in SERVICES.items():
        if not name.startswith("api"):
            continue
        env = service["environment"]
        workers, threads = int(env["GRADSTAB_WORKERS"]), int(env["GRADSTAB_TORCH_THREADS"])
        limits = service["deploy"]["resources"]["limits"]
        assert workers * threads <= float(limits["cpus"]), name
        assert _mib(limits["memory"]) >= workers * (float(env["GRADSTAB_MAX_MEMORY_MIB"]) + 512), name


def test_gpu_profile_reserves_an_nvidia_device_and_builds_cuda() -> None:
    gpu = _profile("gpu")
    assert len(gpu) == 1
    (service,) = gpu.values()
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    variant = service["build"]["args"]["TORCH_VARIANT"]
    assert re.fullmatch(r"cu\d{3}", variant), variant
    assert "ARG TORCH_VARIANT" in (REPO / "Dockerfile").read_text()
    assert service["image"] != SERVICES["api"]["image"], "the CUDA image must not overwrite the CPU tag"


def _nginx() -> str:
    return re.sub(r"#[^\n]*", "", NGINX_CONF.read_text())


def test_scale_profile_replicas_behind_a_discovering_proxy() -> None:
    scale = _profile("scale")
    replicated = {k: v for k, v in scale.items() if int(v.get("deploy", {}).get("replicas", 1)) > 1}
    assert len(replicated) == 1, scale.keys()
    ((name, replica),) = replicated.items()
    assert "ports" not in replica and "container_name" not in replica
    port = replica["environment"]["PORT"]

    proxies = [v for v in scale.values() if "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in v.get("volumes", [])]
    assert len(proxies) == 1
    proxy = proxies[0]
    assert proxy["depends_on"][name]["condition"] == "service_healthy"
    image = proxy["image"]
    major, minor, patch = (int(x) for x in re.search(r":(\d+)\.(\d+)\.(\d+)", image).groups())  # type: ignore[union-attr]
    assert (major, minor, patch) >= (1, 27, 3), f"{image}: upstream `resolve` needs nginx >= 1.27.3"

    conf = _nginx()
    assert re.search(r"\bresolver\s+127\.0\.0\.11\b[^;]*\bvalid=\d+s", conf), "Docker's DNS"
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf))
    assert len(upstreams) == 1
    ((upstream, body),) = upstreams.items()
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)([^;]*);", body, re.M)
    assert servers == [(name, port, servers[0][2])], servers
    assert "resolve" in servers[0][2].split() and re.search(r"\bzone\s+\w+", body)
    assert re.findall(r"proxy_pass\s+http://([\w$]+)\s*;", conf) == [upstream]
    read_timeout = re.search(r"proxy_read_timeout\s+(\d+)s", conf)
    assert read_timeout and int(read_timeout[1]) > int(replica["environment"]["GRADSTAB_TIMEOUT"])


def test_scaled_replicas_share_redis() -> None:
    scale = _profile("scale")
    replica = next(v for v in scale.values() if int(v.get("deploy", {}).get("replicas", 1)) > 1)
    url = replica["environment"]["REDIS_URL"]
    host = re.match(r"rediss?://(?:[^@/]*@)?([\w.-]+)", url)
    assert host and host[1] in scale, f"{url}: not a service of the scale profile"
    assert replica["depends_on"][host[1]]["condition"] == "service_healthy"
    assert "healthcheck" in scale[host[1]]
    assert SERVICES["api"]["environment"]["REDIS_URL"] == "", "single api: in-process by default"


def test_replicas_trust_exactly_the_proxy_in_front() -> None:
    """Behind nginx the replicas believe one hop of X-Forwarded-*, so per-address rate limits see
    the real clients; so does the default api behind `front`; the code's default believes none (a
    directly published server: a client could pick its bucket)."""
    from service.config import Settings

    scale = _profile("scale")
    replica = next(v for v in scale.values() if int(v.get("deploy", {}).get("replicas", 1)) > 1)
    assert Settings.from_env(replica["environment"]).trusted_proxies == 1
    assert Settings.from_env(SERVICES["api"]["environment"]).trusted_proxies == 1
    assert Settings().trusted_proxies == 0
    conf = _nginx()
    for header, value in (
        ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),  # appends the address nginx saw
        ("X-Forwarded-Proto", "$scheme"),
        ("X-Forwarded-Host", "$host"),  # set, so a client's own X-Forwarded-Host is not passed on
    ):
        assert re.search(rf"proxy_set_header\s+{header}\s+{re.escape(value)}\s*;", conf), header


def test_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        if "build" in service:
            continue
        assert re.search(r":\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned to a version"


def test_no_secret_defaults() -> None:
    env = SERVICES["api"]["environment"]
    assert env["GRADSTAB_API_KEYS"] == "" and env["GRADSTAB_API_KEYS_FILE"] == ""
    assert not (REPO / ".env").exists() or ".env" in (REPO / ".gitignore").read_text()


def test_paths_mounted_exist() -> None:
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / Path(source)).exists(), source


def test_redis_persistence_is_stated() -> None:
    """Issue 20 item 2: the compose Redis says whether it persists (here: neither RDB snapshots nor AOF), so the
    README's account of what a restart loses (every job; tests/jobs/test_redis_restart.py) is the one that runs."""
    command = RAW_SERVICES["redis"]["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
