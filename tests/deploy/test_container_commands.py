"""The image's exact CMD and HEALTHCHECK, run outside a container against this checkout.

Why: no Docker engine runs in CI, yet an image whose CMD cannot start or whose HEALTHCHECK
never passes is the failure an operator meets first. The commands are read from the
Dockerfile (not copied here), run with the runtime stage's ENV, from the repository root
(the image's WORKDIR /app holds the same layout: gunicorn.conf.py, deploy/healthcheck.py),
with .venv/bin standing in for the image's /opt/venv/bin (both installed with
`-c constraints.txt`; test_dockerfile.py checks the versions). Overridden for safety on a
shared machine: HOST=127.0.0.1, a free PORT, a private PROMETHEUS_MULTIPROC_DIR and HOME.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.support import REPO, VENV_BIN, exec_form, healthcheck, load_dockerfile, stage_env
from tests.servers import free_port, running_server

_, STAGES = load_dockerfile()
RUNTIME = STAGES[-1]
CMD = exec_form(RUNTIME.last("CMD").value)  # type: ignore[union-attr]
HC_OPTIONS, HC_CMD = healthcheck(RUNTIME.last("HEALTHCHECK").value)  # type: ignore[union-attr]

pytestmark = pytest.mark.slow

_MISSING = [p for p in ("gunicorn.conf.py", "service/wsgi.py") if not (REPO / p).exists()]
if _MISSING or not (VENV_BIN / "python").exists():
    pytestmark = [
        pytest.mark.slow,
        pytest.mark.skip(reason=f"needs the HTTP layer and .venv; missing: {_MISSING or '.venv'}"),
    ]


def _seconds(duration: str) -> float:
    """Docker durations as used in HEALTHCHECK options: 90s, 1m30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, duration
    return sum(float(n) * units[u] for n, u in parts)


@pytest.fixture()
def container_env(tmp_path: Path) -> dict[str, str]:
    """The image's environment: the runtime stage's ENV over a bare base, as in a container
    (which does not inherit the caller's GRADSTAB_* or PROMETHEUS_* variables)."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path / "home")}
    env = stage_env(RUNTIME, base)
    env["PATH"] = env["PATH"].replace("/opt/venv/bin", str(VENV_BIN))
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / Path(env["PROMETHEUS_MULTIPROC_DIR"]).name)
    env.update(HOST="127.0.0.1", PORT=str(free_port()))
    # docker-compose.yml's defaults, kept small for a shared CI machine.
    env.update(GRADSTAB_WORKERS="2", GRADSTAB_TORCH_THREADS="1")
    (tmp_path / "home").mkdir()
    return env


def _health(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    timeout = _seconds(HC_OPTIONS.get("timeout", "30s"))
    return subprocess.run(
        [*HC_CMD, *extra],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout + 5,
        check=False,
    )


@pytest.fixture()
def server(container_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Started, not awaited: the test itself waits through the image's HEALTHCHECK. Killed as
    a whole process group, so no worker outlives a failed test."""
    exe = shutil.which(CMD[0], path=container_env["PATH"])
    assert exe is not None and Path(exe).parent == VENV_BIN, f"{CMD[0]} resolves to {exe}"
    with running_server(
        CMD,
        container_env,
        cwd=REPO,
        log_path=tmp_path / "server.log",
        ready_path=None,
        stop_signal=signal.SIGKILL,
        process_group=True,
    ) as handle:
        yield handle.proc


def _log(tmp_path: Path) -> str:
    path = tmp_path / "server.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_healthcheck_fails_while_nothing_listens(container_env: dict[str, str]) -> None:
    result = _health(container_env)
    assert result.returncode != 0, result.stdout


def test_cmd_becomes_healthy_serves_and_stops_cleanly(
    server: subprocess.Popen[bytes], container_env: dict[str, str], tmp_path: Path
) -> None:
    # Docker marks the container unhealthy after start-period + retries × interval.
    budget = _seconds(HC_OPTIONS["start-period"]) + int(HC_OPTIONS["retries"]) * _seconds(HC_OPTIONS["interval"])
    deadline = time.monotonic() + budget
    result = _health(container_env)
    while result.returncode != 0:
        assert server.poll() is None, f"CMD exited {server.returncode}:\n{_log(tmp_path)}"
        assert time.monotonic() < deadline, f"not healthy in {budget}s: {result.stdout}\n{_log(tmp_path)}"
        time.sleep(1.0)
        result = _health(container_env)
    assert "/readyz -> 200" in result.stdout

    # The cheap liveness probe and the metrics endpoint work with the image's ENV
    # (multiprocess metrics written under PROMETHEUS_MULTIPROC_DIR).
    assert _health(container_env, "/livez").returncode == 0
    port = container_env["PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert "text/plain" in response.headers["Content-Type"]
    assert any(Path(container_env["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"))

    # docker stop: SIGTERM, then SIGKILL after the grace period; gunicorn must exit 0 in it.
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=45)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 45 s after SIGTERM:\n{_log(tmp_path)}")
    assert code == 0, f"exit {code} after SIGTERM:\n{_log(tmp_path)}"
    time.sleep(0.5)
    assert not _group_alive(server.pid), "workers outlived the master"

    down = _health(container_env)
    assert down.returncode != 0, down.stdout
