"""Marshmallow schemas: the only place that knows the wire format, the defaults and the limits."""

from .limits import Limits
from .spec import ModelSpecSchema, check_limits

__all__ = ["Limits", "ModelSpecSchema", "check_limits"]
