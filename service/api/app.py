"""The application factory: the only place where settings, resources and extensions meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import service
from service.config import Settings

from . import docs, metrics, request_id
from .extensions import EXTENSIONS, RESOURCES
from .jsonio import StrictJSONProvider
from .smorest import Api
from .state import ServiceState

API_DESCRIPTION = (
    "Diagnose exploding and vanishing gradients of an MLP described by a JSON spec: "
    "per-layer gradient and Jacobian-product statistics, a verdict, its causes and verified "
    "fixes. Errors are RFC 9457 problem+json."
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides Flask settings; GRADSTAB_SETTINGS may hold a Settings."""
    config = dict(config or {})
    settings: Settings = config.pop("GRADSTAB_SETTINGS", None) or Settings.from_env()
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    app.config.update(
        API_TITLE="Gradient stability service",
        API_VERSION=service.__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": API_DESCRIPTION}},
        MAX_CONTENT_LENGTH=settings.limits.max_body_bytes,
        GRADSTAB_SETTINGS=settings,
    )
    app.config.update(config)
    st = ServiceState(settings)
    app.extensions["gradstab"] = st

    request_id.init_app(app)  # first: every later hook and log line has the id
    metrics.init_app(app)
    st.api = api = Api(app)
    for make_blueprint in RESOURCES:
        api.register_blueprint(make_blueprint(settings))
    app.register_blueprint(docs.bp)
    for extension in EXTENSIONS:
        extension(app, api)

    if settings.trusted_proxies:
        # Behind N trusted proxies: the client address, scheme and host are the ones the
        # outermost of them saw (rate limits per client address and logs depend on it).
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    if settings.warm_up:
        from .health import warm_up

        warm_up(app)
    return app
