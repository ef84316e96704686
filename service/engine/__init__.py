"""The analysis engine: pure torch and stdlib (no Flask), shared by the CLI and the HTTP API.

Importing the package loads nothing: `service.engine.spec` and `service.engine.cost` are
torch-free and the schemas import them where torch must not be loaded (the gunicorn master).
`analyze`, `Report`, `ModelSpec` and `ENGINE_VERSION` are loaded on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ENGINE_VERSION": "service.engine.analysis",
    "ModelSpec": "service.engine.spec",
    "Report": "service.engine.report",
    "analyze": "service.engine.analysis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'service.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
