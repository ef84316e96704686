"""Container health probe: GET /readyz on the local gunicorn, exit 0 if 2xx, else 1.

Why a script and not curl: the python:slim image ships no curl or wget, and the stdlib is
enough. Used by the Dockerfile's HEALTHCHECK and docker-compose.yml's healthcheck, and run by
tests/deploy against a real server, so keep it dependency-free and fast (it never imports
the service or torch).

    python deploy/healthcheck.py            # GET http://127.0.0.1:$PORT/readyz
    python deploy/healthcheck.py /livez     # another path
    HEALTHCHECK_URL=http://host:port/readyz python deploy/healthcheck.py

Environment: PORT (default 8000) and HOST (wildcards 0.0.0.0 / :: / empty probe loopback),
the same variables gunicorn.conf.py binds to; HEALTHCHECK_URL overrides the whole URL;
HEALTHCHECK_TIMEOUT seconds (default 4, below the HEALTHCHECK --timeout of 5 s).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

_WILDCARDS = {"", "0.0.0.0", "::", "[::]", "*"}


def probe_url(env: Mapping[str, str], path: str = "/readyz") -> str:
    """The URL to probe: a wildcard bind is reached on loopback, a specific one on itself."""
    if env.get("HEALTHCHECK_URL"):
        return env["HEALTHCHECK_URL"]
    host = env.get("HOST", "").strip()
    port = env.get("PORT", "").strip() or "8000"
    if host in _WILDCARDS:
        host = "[::1]" if host in {"::", "[::]"} else "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    """GET url without any proxy (an operator's HTTP_PROXY must not route loopback away)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status = int(response.status)
            return 200 <= status < 300, f"{url} -> {status}"
    except urllib.error.HTTPError as exc:  # 4xx/5xx, e.g. 503 while warming up
        return False, f"{url} -> {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, bad URL
        return False, f"{url} -> {type(exc).__name__}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = args[0] if args else "/readyz"
    try:
        timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT") or 4.0)
    except ValueError:
        timeout = 4.0
    ok, message = check(probe_url(os.environ, path), timeout)
    print(("healthy: " if ok else "unhealthy: ") + message)  # kept in `docker inspect` health log
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
