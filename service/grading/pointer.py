"""RFC 6901 JSON pointers into a dumped report: the rubric names report values the way the
contract's field names read (`/diagnosis/log10_total_growth`, `/layers/0/weight_grad/norm`).
"""

from __future__ import annotations

from typing import Any


class PointerError(LookupError):
    """The pointer is malformed or names nothing in the document; the message says where it stopped."""


def parse(pointer: str) -> list[str]:
    """The reference tokens of `pointer` ("" is the whole document), with ~1 and ~0 unescaped."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"a JSON pointer starts with '/', got {pointer!r}")
    tokens = pointer[1:].split("/")
    for token in tokens:
        bad = token.replace("~0", "").replace("~1", "")
        if "~" in bad:
            raise PointerError(f"{pointer!r}: '~' must be followed by 0 or 1 (RFC 6901)")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def resolve(doc: Any, pointer: str) -> Any:
    """The value at `pointer` in `doc`; PointerError names the first token that does not exist."""
    node = doc
    walked = ""
    for token in parse(pointer):
        if isinstance(node, dict):
            if token not in node:
                raise PointerError(f"{pointer}: no field {token!r} under {walked or '/'}")
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
                raise PointerError(f"{pointer}: {token!r} is not an array index under {walked or '/'}")
            index = int(token)
            if index >= len(node):
                raise PointerError(f"{pointer}: index {index} is past the end of {walked or '/'} ({len(node)} items)")
            node = node[index]
        else:
            raise PointerError(f"{pointer}: {walked or '/'} is a {type(node).__name__}, not an object")
        walked += "/" + token.replace("~", "~0").replace("/", "~1")
    return node
