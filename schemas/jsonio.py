"""Strict JSON in and out: one encoder for the API and the CLI, one refusing decoder for bodies
(no Flask: service/api/jsonio.py plugs the encoder into Flask).

Python's json accepts NaN/Infinity literals and recurses without bound by default; a
request must not be able to use either, and a response must never contain them.

Responses are encoded with orjson (about 10x faster than json on a report). orjson writes
null for NaN/±inf and accepts types json refuses, so its text is used only when it decodes
back to a value equal to the input (NaN never equals anything, inf never equals null);
otherwise the stdlib encoder with allow_nan=False runs, and raises as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


class BodyError(ValueError):
    """A request body that is not acceptable JSON; `reason` is the metrics label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _stdlib_dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def _orjson_dumps(obj: Any) -> bytes | None:
    """orjson's encoding of `obj` where it round-trips to an equal value, else None.

    That refuses NaN/±inf (which orjson writes as null: NaN equals nothing, inf is not None) and
    whatever json would encode differently or refuse (non-str keys, ints over 64 bits, dataclasses,
    dates, tuples…): those go through json as before."""
    try:
        out = orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: json may still encode it (or raise its own error)
        return None
    return out if orjson.loads(out) == obj else None


def dumps(obj: Any) -> str:
    """The wire encoding: compact, UTF-8 text, declared key order, no NaN/Infinity (raises ValueError)."""
    out = _orjson_dumps(obj)
    return _stdlib_dumps(obj) if out is None else out.decode("utf-8")


def dumps_bytes(obj: Any) -> bytes:
    """`dumps` as UTF-8 bytes, for response bodies (no str round trip)."""
    out = _orjson_dumps(obj)
    return _stdlib_dumps(obj).encode("utf-8") if out is None else out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are unique; a repeated key is refused (json would keep the last silently)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            shown = key if len(key) <= 100 else f"{key[:100]}…"
            raise BodyError("duplicate_key", f"Duplicate key {shown!r} in a JSON object; send each key once.")
        obj[key] = value
    return obj


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
    """Decode a request body: UTF-8 only, no NaN/Infinity, no repeated keys, nesting at most `max_depth`."""
    if not raw.strip():
        raise BodyError("empty_body", "The request body is empty; send a JSON model spec.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("bad_encoding", f"The body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON.") from exc
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
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
