"""Marshmallow schemas: the only place that knows the wire format, the defaults and the limits.

Nothing is imported eagerly: `schemas.limits` must stay importable without the engine (the
gunicorn master reads limits through service.config and never loads torch). The names below are
loaded from their modules on first access (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Limits": "schemas.limits",
    "ModelSpecSchema": "schemas.spec",
    "ProblemSchema": "schemas.errors",
    "ReportSchema": "schemas.report",
    "check_limits": "schemas.spec",
    "dump_report": "schemas.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'schemas' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
