"""The analysis engine: pure torch and stdlib (no Flask), shared by the CLI and the HTTP API."""

from .analysis import ENGINE_VERSION, analyze
from .report import Report
from .spec import ModelSpec

__all__ = ["ENGINE_VERSION", "ModelSpec", "Report", "analyze"]
