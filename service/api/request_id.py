"""X-Request-ID: accepted when sane, generated otherwise, echoed on every response."""

from __future__ import annotations

from flask import Flask, Response, g, request

from service.logs import REQUEST_ID_HEADER, request_id_from


def _assign() -> None:
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))


def _echo(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def init_app(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_echo)
