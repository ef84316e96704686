"""API keys: who is calling, checked in constant time, named in logs and metrics.

Keys come from GRADSTAB_API_KEYS ("name:key[:role],...") or GRADSTAB_API_KEYS_FILE (one
`name:key[:role]` per line, or JSON: {"name": "key"} or [{"name", "key", "role"}]). Roles:
`instructor` (the default: everything, full grading results) and `student` (analyses and
assignments, with hidden checks left out of results; 403 on ad-hoc /v1/grade). With no keys
the service is open, every caller is anonymous with the student view of assignment results,
and start-up logs a warning saying so.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, g, request

from .errors import ProblemError

log = logging.getLogger("service.auth")

ROLES: tuple[str, ...] = ("instructor", "student")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_KEY_LENGTH = 16
# Probes, metrics and the API description stay reachable without a key.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/metrics", "/openapi.json"})
OPEN_PREFIXES = ("/docs", "/problems/")


@dataclass(frozen=True)
class ApiKey:
    name: str
    key: str
    role: str = "instructor"

    def __repr__(self) -> str:  # never print the secret
        return f"ApiKey(name={self.name!r}, role={self.role!r})"


def _entry(name: str, key: str, role: str, where: str) -> ApiKey:
    role = role or "instructor"
    if not NAME.match(name):
        raise ValueError(f"{where}: key name {name!r} must be 1-64 letters, digits, '_', '.', '@', '-'")
    if role not in ROLES:
        raise ValueError(f"{where}: role {role!r} of key {name!r} is not one of {', '.join(ROLES)}")
    if not key:
        raise ValueError(f"{where}: key {name!r} is empty")
    if len(key) < MIN_KEY_LENGTH:
        log.warning("short API key", extra={"key_name": name, "min_length": MIN_KEY_LENGTH})
    return ApiKey(name, key, role)


def parse_pairs(text: str, where: str, separator: str = ",") -> list[ApiKey]:
    """`name:key[:role]` items; blank items and `#` comment lines are skipped."""
    out = []
    for item in text.split(separator):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"{where}: {parts[0]!r}… is not name:key or name:key:role")
        out.append(_entry(parts[0].strip(), parts[1].strip(), parts[2].strip() if len(parts) == 3 else "", where))
    return out


def parse_file(path: str) -> list[ApiKey]:
    text = Path(path).read_text(encoding="utf-8")
    where = f"GRADSTAB_API_KEYS_FILE={path}"
    if text.lstrip().startswith(("{", "[")):
        data: Any = json.loads(text)
        if isinstance(data, dict):
            return [_entry(str(n), str(k), "", where) for n, k in data.items()]
        return [_entry(str(d.get("name", "")), str(d.get("key", "")), str(d.get("role", "")), where) for d in data]
    return parse_pairs(text, where, separator="\n")


def load_keys(keys_env: str | None, keys_file: str | None) -> list[ApiKey]:
    keys = parse_pairs(keys_env, "GRADSTAB_API_KEYS") if keys_env else []
    if keys_file:
        keys += parse_file(keys_file)
    names = [k.name for k in keys]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"API key names must be unique; repeated: {dupes}")
    return keys


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def match(keys: Iterable[ApiKey], given: str) -> ApiKey | None:
    """Compare against every key (no early exit), each in constant time."""
    found = None
    for k in keys:
        if hmac.compare_digest(k.key.encode(), given.encode()):
            found = k
    return found


class Unauthorized(ProblemError):
    """401 with WWW-Authenticate: Bearer, as RFC 9110 asks."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, "unauthorized", detail, title="Unauthorized")

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", 'Bearer realm="gradstab"')]


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def init_app(app: Flask, keys: list[ApiKey]) -> None:
    """Authenticate every request but the open paths; `g.api_key` is the caller (None when open)."""
    app.extensions["gradstab_keys"] = keys
    if not keys:
        log.warning(
            "no API keys configured: the service is open to anyone who can reach it "
            "(set GRADSTAB_API_KEYS or GRADSTAB_API_KEYS_FILE)"
        )
    else:
        log.info("API keys loaded", extra={"keys": len(keys), "roles": sorted({k.role for k in keys})})

    @app.before_request
    def authenticate() -> None:
        g.api_key = None
        if not keys or is_open_path(request.path) or request.method == "OPTIONS":
            return
        given = presented_key()
        if given is None:
            raise Unauthorized("Send an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
        found = match(keys, given)
        if found is None:
            log.info("rejected API key", extra={"path": request.path})
            raise Unauthorized("The API key is not valid.")
        g.api_key = found


def caller_name() -> str:
    """The key's name for logs and metric labels; `anonymous` when the service is open."""
    key = g.get("api_key")
    return key.name if key is not None else "anonymous"


def caller_role() -> str:
    """instructor or student; an open service treats callers as students (hidden checks stay hidden)
    except that ad-hoc grading, where the caller brings the rubric, stays allowed."""
    key = g.get("api_key")
    return key.role if key is not None else "student"


def require_role(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """403 for a valid key whose role may not do this (an open service lets everyone through)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = g.get("api_key")
            if key is not None and key.role not in roles:
                raise ProblemError(
                    403,
                    "forbidden",
                    f"The key {key.name!r} has the role {key.role!r}; this needs {' or '.join(roles)}.",
                    title="Forbidden",
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate
