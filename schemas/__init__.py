"""Marshmallow schemas: the only place that knows the wire format, the defaults and the limits."""

from .errors import ProblemSchema
from .limits import Limits
from .report import ReportSchema, dump_report
from .spec import ModelSpecSchema, check_limits

__all__ = ["Limits", "ModelSpecSchema", "ProblemSchema", "ReportSchema", "check_limits", "dump_report"]
