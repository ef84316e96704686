"""GRADSTAB_TRUSTED_PROXIES: which X-Forwarded-* headers decide the client's address.

Why: without API keys the rate limit counts per client address. Behind nginx (the compose
`scale` profile) every request comes from nginx's address, so all anonymous clients would
share one bucket unless the service believes nginx's X-Forwarded-For; and a service reached
directly must not believe it, or a client picks its own bucket with a header.
"""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service.api.app import create_app
from service.config import Settings

PROXY_ADDR = "10.0.0.2"  # nginx, as the replica sees it
LIMIT = 2


def _app(trusted_proxies: int, prefix: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "GRADSTAB_SETTINGS": Settings(trusted_proxies=trusted_proxies, cache_size=0, rate_limit=f"{LIMIT}/minute"),
            "RATELIMIT_KEY_PREFIX": prefix,
        }
    )


def _statuses(app: Flask, forwarded_for: str, n: int = LIMIT + 1) -> list[int]:
    client = app.test_client()
    return [
        client.get(
            "/v1/capabilities",
            headers={"X-Forwarded-For": forwarded_for},
            environ_base={"REMOTE_ADDR": PROXY_ADDR},
        ).status_code
        for _ in range(n)
    ]


def test_settings_default_trusts_no_proxy():
    assert Settings().trusted_proxies == 0
    assert Settings.from_env({}).trusted_proxies == 0
    assert Settings.from_env({"GRADSTAB_TRUSTED_PROXIES": "1"}).trusted_proxies == 1
    with pytest.raises(ValueError, match="GRADSTAB_TRUSTED_PROXIES"):
        Settings.from_env({"GRADSTAB_TRUSTED_PROXIES": "-1"})
    with pytest.raises(ValueError, match="GRADSTAB_TRUSTED_PROXIES"):
        Settings.from_env({"GRADSTAB_TRUSTED_PROXIES": "yes"})


def test_untrusted_forwarded_for_is_ignored_by_the_rate_limit():
    app = _app(0, "proxies-0")
    assert not isinstance(app.wsgi_app, ProxyFix)
    assert _statuses(app, "203.0.113.1") == [200, 200, 429]
    # A different X-Forwarded-For is the same client (the connection's address): still limited.
    assert _statuses(app, "203.0.113.2", n=1) == [429]
    body = app.test_client().get("/v1/capabilities", environ_base={"REMOTE_ADDR": PROXY_ADDR}).get_json()
    assert f"client {PROXY_ADDR}" in body["detail"]


def test_one_trusted_proxy_gives_each_forwarded_client_its_own_limit():
    app = _app(1, "proxies-1")
    assert _statuses(app, "203.0.113.1") == [200, 200, 429]
    assert _statuses(app, "203.0.113.2") == [200, 200, 429]  # its own bucket, not nginx's
    refused = app.test_client().get(
        "/v1/capabilities", headers={"X-Forwarded-For": "203.0.113.2"}, environ_base={"REMOTE_ADDR": PROXY_ADDR}
    )
    assert "client 203.0.113.2" in refused.get_json()["detail"]


def test_only_the_trusted_hop_counts():
    """nginx appends the address it saw ($proxy_add_x_forwarded_for): with one trusted proxy the
    last entry is the client, and whatever the client wrote before it cannot move its bucket."""
    app = _app(1, "proxies-spoof")
    assert _statuses(app, "198.51.100.7, 203.0.113.9") == [200, 200, 429]
    assert _statuses(app, "198.51.100.8, 203.0.113.9", n=1) == [429]


def test_proxy_fix_covers_address_scheme_and_host():
    app = _app(2, "proxies-2")
    assert isinstance(app.wsgi_app, ProxyFix)
    assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (2, 2, 2)
    assert app.wsgi_app.x_port == 0 and app.wsgi_app.x_prefix == 0

    seen: dict[str, str] = {}

    @app.get("/_test/whoami")
    def whoami() -> dict[str, str]:
        from flask import request

        seen.update(addr=request.remote_addr or "", scheme=request.scheme, host=request.host)
        return seen

    app.test_client().get(
        "/_test/whoami",
        headers={  # two proxies: each header has two entries, the first one the outer proxy's
            "X-Forwarded-For": "203.0.113.5, 10.0.0.9",
            "X-Forwarded-Proto": "https, http",
            "X-Forwarded-Host": "api.example, lb.internal",
        },
        environ_base={"REMOTE_ADDR": PROXY_ADDR},
    )
    assert seen == {"addr": "203.0.113.5", "scheme": "https", "host": "api.example"}
