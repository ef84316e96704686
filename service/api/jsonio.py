"""Strict JSON in and out: one encoder for the API and the CLI, one refusing decoder for bodies.

Python's json accepts NaN/Infinity literals and recurses without bound by default; a
request must not be able to use either, and a response must never contain them.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider


class BodyError(ValueError):
    """A request body that is not acceptable JSON; `reason` is the metrics label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def dumps(obj: Any) -> str:
    """The wire encoding: compact, UTF-8 text, declared key order, no NaN/Infinity (raises)."""
    return json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def _no_constants(name: str) -> Any:
    raise BodyError("bad_json", f"{name} is not valid JSON; send a finite number or null.")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads_body(raw: bytes, max_depth: int) -> Any:
    """Decode a request body: UTF-8 only, no NaN/Infinity, nesting at most `max_depth`."""
    if not raw.strip():
        raise BodyError("empty_body", "The request body is empty; send a JSON model spec.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("bad_encoding", f"The body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON.") from exc
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except BodyError:
        raise
    except RecursionError as exc:
        raise BodyError("too_deep", f"JSON nested deeper than {max_depth} levels.") from exc
    except json.JSONDecodeError as exc:
        detail = f"Malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        raise BodyError("bad_json", detail) from exc
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise BodyError("bad_json", f"Malformed JSON: {exc}.") from exc
    if _depth(value) > max_depth:
        raise BodyError("too_deep", f"JSON nested deeper than {max_depth} levels.")
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with the wire encoding above (every response goes through it)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # Flask internals passing options: honour them but never allow NaN
            kwargs["allow_nan"] = False
            return json.dumps(obj, **kwargs)
        return dumps(obj)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(f"{dumps(obj)}\n", mimetype=self.mimetype)
