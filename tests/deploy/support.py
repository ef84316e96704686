"""Static readers for the deployment files, so CI can check them without a Docker engine.

A small Dockerfile parser (enough for our Dockerfile: continuations, comments, stages, exec
form, ENV/ARG, HEALTHCHECK options), .dockerignore matching with Docker's semantics, and
Compose variable interpolation. Deliberately small: the tests use them to extract the exact
commands and values the image runs with, not to re-implement BuildKit.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
COMPOSE_SCHEMA = REPO / "deploy" / "compose-spec.json"
VENV_BIN = REPO / ".venv" / "bin"


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case, e.g. "RUN"
    value: str  # the rest, continuation lines joined with a space
    line: int  # 1-based line of the keyword


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order; comment lines inside a continuation are dropped, as Docker does."""
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and (not stripped or stripped.startswith("#")):
            continue  # blank or comment line inside a continuation
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        joined = " ".join(p for p in parts if p)
        keyword, _, value = joined.partition(" ")
        out.append(Instruction(keyword.upper(), value.strip(), start))
        parts = []
    if parts:
        raise ValueError(f"Dockerfile ends inside a continuation started on line {start}")
    return out


def stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults (before the first FROM) and the build stages."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.value.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        elif not result:
            if ins.keyword == "ARG":
                key, _, default = ins.value.partition("=")
                global_args[key.strip()] = default.strip().strip('"')
        else:
            result[-1].instructions.append(ins)
    return global_args, result


def load_dockerfile(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    return stages(parse_dockerfile(path.read_text()))


def exec_form(value: str) -> list[str]:
    """A JSON-array (exec form) command; raises ValueError for the shell form."""
    if not value.startswith("["):
        raise ValueError(f"not exec form: {value!r}")
    argv = json.loads(value)
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError(f"not a list of strings: {value!r}")
    return argv


def healthcheck(value: str) -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK options (--interval=15s → {"interval": "15s"}) and its exec-form command."""
    head, sep, cmd = value.partition("CMD ")
    if not sep:
        raise ValueError(f"HEALTHCHECK without CMD: {value!r}")
    options: dict[str, str] = {}
    for word in head.split():
        key, _, val = word.removeprefix("--").partition("=")
        options[key] = val
    return options, exec_form(cmd.strip())


_REF = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _substitute(value: str, known: Mapping[str, str]) -> str:
    return _REF.sub(lambda m: known.get(m["braced"] or m["bare"], ""), value)


def key_values(value: str, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """ENV/LABEL/ARG pairs in `k=v k2="v 2"` form (or legacy `ENV k v`), $VAR substituted."""
    known = dict(known or {})
    words = shlex.split(value, posix=True)
    if words and "=" not in words[0]:  # legacy: ENV key value with spaces
        return {words[0]: _substitute(" ".join(words[1:]), known)}
    pairs: dict[str, str] = {}
    for word in words:
        key, _, val = word.partition("=")
        pairs[key] = _substitute(val, {**known, **pairs})
    return pairs


def stage_env(stage: Stage, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stage's ENV values in order (each may refer to earlier ones, e.g. $PATH)."""
    env = dict(base_env or {})
    for ins in stage.all("ENV"):
        env.update(key_values(ins.value, env))
    return env


def stage_args(stage: Stage, global_args: Mapping[str, str]) -> dict[str, str]:
    """A stage's ARG defaults; a bare `ARG X` re-imports the global default, as Docker does."""
    args: dict[str, str] = {}
    for ins in stage.all("ARG"):
        key, eq, default = ins.value.partition("=")
        key = key.strip()
        if eq:
            args[key] = _substitute(default.strip().strip('"'), {**global_args, **args})
        elif key in global_args:
            args[key] = global_args[key]
    return args


# --------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's (moby/patternmatcher) syntax: * and ? stay in one segment, ** spans any."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            out += pattern[i : end + 1] if end > 0 else re.escape(c)
            i = end if end > 0 else i
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def is_ignored(relpath: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Last matching rule wins; a rule matching a parent folder matches its contents."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def context_files(root: Path = REPO) -> Iterator[str]:
    """Repository files (relative paths) that the build context would send."""
    rules = dockerignore_rules(root / ".dockerignore")
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if d not in {".git", ".venv"}]
        for name in filenames:
            rel = rel_dir + name
            if not is_ignored(rel, rules):
                yield rel


# --------------------------------------------------------------------------- compose


_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate_str(value: str, env: Mapping[str, str]) -> str:
    """Compose interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$."""

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["name"] or m["bare"]
        op, arg = m["op"], m["arg"] or ""
        current = env.get(name)
        missing = not current if op in (":-", ":?") else current is None
        if missing and op and op.endswith("?"):
            raise KeyError(f"required variable {name} is missing: {arg}")
        if missing and op and op.endswith("-"):
            return arg
        return current or ""

    return _COMPOSE_VAR.sub(one, value)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Every string in a parsed compose document interpolated, as `docker compose config` does."""
    if isinstance(node, str):
        return interpolate_str(node, env)
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    return node


def default_of(raw: str) -> str | None:
    """The default in a `${NAME:-default}` value, None if the value has no such default."""
    m = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-(?P<arg>[^}]*)\}", raw.strip())
    return m["arg"] if m else None
