"""Request bodies over GRADSTAB_MAX_BODY_BYTES end as a 413 the client can read, however they come.

Two gaps this WSGI middleware closes (issue 13, item 8):

- A chunked body (no Content-Length) was cut at the limit by werkzeug's stream wrapper: a 1.4 MB
  spec got "400 Malformed JSON … column 1000001", and one whose first megabyte was valid JSON was
  accepted. Here a body without Content-Length is read up to the limit plus one byte; past the
  limit the request carries that length, so Flask's MAX_CONTENT_LENGTH refuses it with the usual
  413 problem+json (request id, metrics); within it the app gets the whole body with its length.
- A refused body that is left unread makes the server close a socket with unread data, so the
  kernel answers with a reset and the client (urllib3, requests) loses the 413 it was sent. After
  the response has gone out, the rest of the body is read and dropped, at most DRAIN_MAX_BYTES
  within DRAIN_SECONDS (a slow sender cannot hold the worker longer than that).

And one it opens for issue 20 (item 6): a sync worker reads the body when the view asks for it, inside the
request deadline, so a client that declares `Content-Length: 500`, sends 2 bytes and goes quiet held a worker
for the whole deadline (108 s), and two such connections stopped the app port. Under gunicorn the body is now
read here, before the app runs, within GRADSTAB_BODY_TIMEOUT seconds in all (Settings.body_timeout_s);
past it the request carries `gradstab.body_timeout` and the app answers 408 problem+json at once (the sync
worker then closes the connection), freeing the worker after 2 s by default.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

# What is read and dropped after a refusal, at most: enough for a 50 MB upload on a LAN.
DRAIN_MAX_BYTES = 128 * 2**20
DRAIN_SECONDS = 5.0
TIMED_OUT = "gradstab.body_timeout"  # set in the WSGI environ when the body did not arrive in time
_CHUNK = 64 * 1024


def _declared_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        return None


def _read_up_to(stream: Any, limit: int) -> bytes:
    parts, got = [], 0
    while got < limit:
        chunk = stream.read(min(_CHUNK, limit - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _read_in_time(stream: Any, sock: socket.socket, limit: int, seconds: float) -> bytes | None:
    """Up to `limit` bytes of the body within `seconds` in all (each read waits at most what is left); None
    where the client did not send them in time (or the connection failed while it was being read)."""
    old_timeout = sock.gettimeout()
    deadline = time.monotonic() + seconds
    parts, got = [], 0
    try:
        while got < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            chunk = stream.read(min(_CHUNK, limit - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except Exception:  # timed out, reset, or gunicorn's parser errors on a broken chunked body
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(old_timeout)
    return b"".join(parts)


def drain(environ: dict[str, Any], max_bytes: int = DRAIN_MAX_BYTES, seconds: float = DRAIN_SECONDS) -> int:
    """Read and drop what is left of the request body, within the byte and time budget; bytes dropped."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return 0
    sock = environ.get("gunicorn.socket")
    old_timeout = sock.gettimeout() if isinstance(sock, socket.socket) else None
    deadline = time.monotonic() + seconds
    dropped = 0
    try:
        while dropped < max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if isinstance(sock, socket.socket):
                sock.settimeout(remaining)
            chunk = stream.read(min(_CHUNK, max_bytes - dropped))
            if not chunk:
                break
            dropped += len(chunk)
    except Exception:  # timed out, reset, or gunicorn's parser errors (InvalidChunkSize…): stop draining
        pass
    finally:
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.settimeout(old_timeout)
    return dropped


class _DrainAfter:
    """The app's response iterable; on close (after the server has sent the response) drains the body."""

    def __init__(self, inner: Iterable[bytes], environ: dict[str, Any]) -> None:
        self._inner = inner
        self._environ = environ

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner)

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            drain(self._environ)


class BodyLimit:
    """WSGI middleware: exact body limits for chunked bodies, and a readable 413 for every refused one."""

    def __init__(self, app: Any, max_bytes: int, body_timeout_s: float = 0.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        declared = _declared_length(environ)
        sock = environ.get("gunicorn.socket")
        timed = isinstance(sock, socket.socket) and self.body_timeout_s > 0
        if timed and (declared or environ.get("wsgi.input_terminated")) and (declared or 0) <= self.max_bytes:
            # Under gunicorn: the whole body now, within the body timeout (or one byte past the limit, chunked).
            body = _read_in_time(environ["wsgi.input"], sock, declared or self.max_bytes + 1, self.body_timeout_s)
            environ[TIMED_OUT] = body is None
            environ["gradstab.original_input"] = environ["wsgi.input"]
            environ["wsgi.input"] = io.BytesIO(body or b"")
            environ["CONTENT_LENGTH"] = str(len(body or b""))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ.pop("wsgi.input_terminated", None)
            over = body is not None and len(body) > self.max_bytes
        elif declared is None and environ.get("wsgi.input_terminated"):
            # A chunked (or otherwise self-terminated) body: read one byte past the limit to know.
            body = _read_up_to(environ["wsgi.input"], self.max_bytes + 1)
            environ["gradstab.original_input"] = environ["wsgi.input"]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ.pop("wsgi.input_terminated", None)
            over = len(body) > self.max_bytes
        else:
            over = declared is not None and declared > self.max_bytes
        result = self.app(environ, start_response)
        if not over:
            return result
        rest = dict(environ)
        rest["wsgi.input"] = environ.get("gradstab.original_input", environ["wsgi.input"])
        return _DrainAfter(result, rest)
