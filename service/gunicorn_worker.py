"""gunicorn's sync worker, with every answer it writes itself as problem+json (issue 13, items 15, 21).

gunicorn answers some requests before the app sees them (a malformed request line or header,
`Content-Length: -1`, a request line over 4094 bytes: 414, too many or too large headers: 431) and
one after the app lost it (the worker timeout: the arbiter's SIGABRT ends the request in flight).
Stock gunicorn writes those as text/html with no request id. This worker keeps gunicorn's own
classification, logging and access log (`Worker.handle_error`) and changes only the body it
writes: `write_problem` replaces `gunicorn.util.write_error` inside the worker process (its one
caller is `handle_error`). A request cut off by the worker timeout is a 503 problem with the
request's id, counted in `gradstab_requests_cut_off_total{stage="hard"}`.

Loaded in the gunicorn master too (it resolves `worker_class`), so nothing here imports Flask,
torch or marshmallow at import time.
"""

from __future__ import annotations

import uuid
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

from schemas.problem import PROBLEM_CONTENT_TYPE, problem_document
from service.logs import REQUEST_ID_HEADER

# The metrics reason and the problem title for the statuses gunicorn writes itself.
_KINDS = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal",
    501: "not_implemented",
    503: "timeout",
}
_MAX_DETAIL = 200
TIMEOUT_DETAIL = (
    "The analysis ran past the server's request timeout (GRADSTAB_TIMEOUT) and was stopped; "
    "submit it as a job (POST /v1/jobs) or ask for less work."
)


def problem_bytes(status: int, reason: str, detail: str, request_id: str, public_url: str = "") -> bytes:
    """A complete HTTP/1.1 response carrying a problem document; the connection closes after it."""
    import json  # stdlib only: the worker may be in a bad state when it writes this

    kind = _KINDS.get(status, f"http_{status}")
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "…"
    doc = problem_document(
        status, reason, detail or reason, kind=kind, instance="", request_id=request_id, public_url=public_url
    )
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8") + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{REQUEST_ID_HEADER}: {request_id}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class ProblemWorker(SyncWorker):
    """SyncWorker whose own error answers are problem+json (see the module docstring)."""

    _cut_off_request_id: str | None = None

    def init_process(self) -> None:
        worker = self
        from service.config import ServerSettings

        public_url = ServerSettings.from_env().public_url

        def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
            request_id = worker._cut_off_request_id or uuid.uuid4().hex
            if worker._cut_off_request_id is not None:  # the worker timeout, not a 500 of our own
                status_int, reason, mesg = 503, "Service Unavailable", TIMEOUT_DETAIL
            util.write_nonblock(sock, problem_bytes(status_int, reason, mesg, request_id, public_url))

        util.write_error = write_problem
        super().init_process()

    def handle_abort(self, sig: int, frame: Any) -> None:
        """The arbiter's SIGABRT at the worker timeout: note the request in flight (its id, a metric)
        while its Flask context is still current, then end the worker as gunicorn does."""
        self._cut_off_request_id = uuid.uuid4().hex
        try:
            from flask import current_app, g, has_request_context

            if has_request_context():
                self._cut_off_request_id = g.get("request_id") or self._cut_off_request_id
                current_app.extensions["gradstab"].metrics.cut_off("hard")
        except Exception:  # never let bookkeeping stop the abort
            pass
        super().handle_abort(sig, frame)
