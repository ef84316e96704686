"""Liveness from the gunicorn master: GET /livez on GRADSTAB_PROBE_PORT, answered by a thread in the
master (issue 13, item 17).

Why the master: a sync worker serves one request at a time, so with every worker inside an analysis
the app's own /livez waits in the listen queue (3-11 s in issue 13; 30 s timeouts with heavier work),
and an orchestrator would restart a healthy, busy service. The master never runs requests. What it
can vouch for is exactly what liveness needs: the arbiter loop is alive and has workers; a worker
stuck past GRADSTAB_TIMEOUT is killed and replaced by that loop, which a restart would not do better.
Readiness (may this instance take traffic now?) stays the app's /readyz.

stdlib only (the master imports no Flask or torch). The server is single-threaded and logs nothing,
so no lock is held across the fork of a new worker.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def start_probe(host: str, port: int, workers: Callable[[], int]) -> HTTPServer:
    """Serve GET /livez on host:port from a daemon thread: 200 while `workers()` > 0, else 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name BaseHTTPRequestHandler dispatches to
            if self.path.split("?", 1)[0] != "/livez":
                self._send(404, {"status": "not_found"})
                return
            alive = workers()
            status = 200 if alive > 0 else 503
            self._send(status, {"status": "ok" if alive else "no_workers", "pid": os.getpid(), "workers": alive})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = HTTPServer((host, port), Handler)
    server.timeout = 2
    threading.Thread(target=server.serve_forever, name="gradstab-probe", daemon=True).start()
    return server
