"""A stand-in for the grading service that answers every POST with a canned response, for the grading
scripts' failure tests: what it answers is chosen per request from its path."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (status, headers, body) for a request path
Answer = Callable[[str], tuple[int, dict[str, str], bytes]]


def _handler(answer: Answer) -> type[BaseHTTPRequestHandler]:
    class Canned(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, body = answer(self.path)
            self.send_response(status)
            for name, value in (headers | {"Content-Length": str(len(body))}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Canned


@contextmanager
def stub_service(answer: Answer) -> Iterator[str]:
    """Its base URL while it runs (loopback, a free port, one thread per request)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
