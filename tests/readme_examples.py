"""The shell examples of README.md and examples/README.md, as a reader would copy them.

Each ```sh block is split into commands the way a shell reads them: a line continues while a
quote is open or it ends in a backslash; comments after `#` are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "examples/README.md")
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Command:
    document: str
    line: int  # where the command starts in its document (1-based)
    text: str  # as written, comments dropped, continuation lines kept

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.text}"


def _scan(text: str) -> tuple[str, bool]:
    """`text` without its shell comments (a `#` at a word's start, outside quotes, to the line's end), and
    whether it is a whole command (no quote left open, no trailing backslash)."""
    out: list[str] = []
    quote, i = None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        out.append(ch)
        i += 1
    stripped = "\n".join(line.rstrip() for line in "".join(out).splitlines()).strip()
    return stripped, quote is None and not stripped.endswith("\\")


def commands(document: str) -> list[Command]:
    source = (ROOT / document).read_text()
    out: list[Command] = []
    for block in _BLOCK.finditer(source):
        first_line = source[: block.start(1)].count("\n") + 1
        pending, start = "", 0
        for offset, line in enumerate(block.group(1).splitlines()):
            if not pending:
                start = first_line + offset
            pending = f"{pending}\n{line}" if pending else line
            text, complete = _scan(pending)
            if complete:
                if text:
                    out.append(Command(document, start, text))
                pending = ""
        assert not pending, f"{document}:{start}: an unterminated command: {pending!r}"
    return out


def all_commands() -> list[Command]:
    return [c for d in DOCUMENTS for c in commands(d)]
