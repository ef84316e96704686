"""`service.wsgi:app` for gunicorn, built on first access (in the worker, never the master).

With preload_app off gunicorn imports this module in each worker; the module-level
__getattr__ keeps even an accidental import in the master free of Flask app and torch work.
"""

from __future__ import annotations

from typing import Any

_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        from service.api.app import create_app

        _app = create_app()
    return _app
