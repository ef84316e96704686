"""Real server processes for the tests: a free port, and one start / wait-until-ready / stop.

Why shared: several modules run the service as a subprocess (gunicorn, `python -m service
serve`, the image's CMD) and each needs the same care: fail with the server's log rather
than hang when it dies or never gets ready, and never leave a process behind.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# Probes go straight to loopback: a proxy from the caller's environment must not answer them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; racy, but fine for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(workers: int) -> dict[str, str]:
    """This environment for a test server on loopback at a free port: `workers` gunicorn workers with one torch
    thread each (workers × threads stays within a 2-core CI machine). Merge the test's own settings into it."""
    return os.environ | {
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "GRADSTAB_WORKERS": str(workers),
        "GRADSTAB_TORCH_THREADS": "1",
    }


@dataclass(frozen=True)
class ServerHandle:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        if self.log_path is None:
            return "(output not captured)"
        return self.log_path.read_text() if self.log_path.exists() else ""


def _ready(url: str) -> bool:
    try:
        with _OPENER.open(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:  # refused, reset, timed out, or an HTTP error status while warming up
        return False


def _signal(handle: ServerHandle, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(handle.proc.pid, sig)
        else:
            handle.proc.send_signal(sig)
    except ProcessLookupError:
        pass


@contextmanager
def running_server(
    cmd: list[str],
    env: Mapping[str, str],
    *,
    cwd: Path,
    log_path: Path | None = None,
    ready_path: str | None = "/readyz",
    deadline_s: float = 120,
    stop_signal: int = signal.SIGTERM,
    process_group: bool = False,
) -> Iterator[ServerHandle]:
    """Start `cmd` (which binds 127.0.0.1:$PORT from `env`), wait for `ready_path` to answer 200,
    yield, then stop it.

    The deadline is generous: importing torch on a busy 2-core CI box is slow. Output goes to
    `log_path` (discarded without one). `ready_path=None` skips the wait, for tests that probe
    readiness themselves. Cleanup sends `stop_signal`, then SIGKILL if the process has not
    exited in 30 s; it does nothing to a process the test already stopped, so a test may send
    SIGTERM itself and assert the exit code. `process_group=True` starts a new session and
    signals that whole group (the server's own workers), as `docker stop` would.
    """
    if log_path is None:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=process_group,
        )
    else:
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                cmd, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=process_group
            )
    handle = ServerHandle(proc=proc, port=int(env["PORT"]), log_path=log_path)
    try:
        if ready_path is not None:
            deadline = time.monotonic() + deadline_s
            while not _ready(handle.url + ready_path):
                if proc.poll() is not None:
                    pytest.fail(f"{shlex.join(cmd)} exited with {proc.returncode} before ready:\n{handle.log_text()}")
                if time.monotonic() >= deadline:
                    pytest.fail(f"{shlex.join(cmd)} not ready in {deadline_s} s:\n{handle.log_text()}")
                time.sleep(0.25)
        yield handle
    finally:
        if proc.poll() is None:
            _signal(handle, stop_signal, process_group)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal(handle, signal.SIGKILL, process_group)
                proc.wait(timeout=30)
