"""Assignments kept on the server: files an instructor drops into GRADSTAB_ASSIGNMENTS_DIR.

Loading is the application's job (files → schemas.grading → `service.grading.model.Assignment`).

Each file (.json, .yaml or .yml) holds one assignment: a public part (id, title, instructions,
starter spec, what may change, which answers to give) and a hidden rubric. They are loaded and
validated once, at start-up; a bad file stops the start with the file and field named, because
a silently missing assignment would only show up when a class of students gets 404s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from schemas.errors import error_lines
from schemas.grading import AssignmentFileSchema
from schemas.limits import Limits
from service.grading.model import Assignment

SUFFIXES = (".json", ".yaml", ".yml")


class AssignmentError(ValueError):
    """One or more assignment files are invalid; the message lists every problem, file by file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid assignment files:\n  " + "\n  ".join(problems))
        self.problems = problems


def public_view(assignment: Assignment) -> dict[str, Any]:
    """What GET /v1/assignments/{id} shows (AssignmentPublicSchema dumps it): never the rubric."""
    return {
        "id": assignment.id,
        "title": assignment.title,
        "instructions": assignment.instructions,
        "starter": assignment.starter,
        "may_change": list(assignment.may_change),
        "answers": assignment.answers,
        "max_score": assignment.rubric.max_score,
    }


def read_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


def load_file(path: Path, limits: Limits | None = None) -> Assignment:
    """One file → an Assignment; ValueError names the field (`rubric.checks[2].pointer: ...`)."""
    try:
        raw = read_file(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise AssignmentError([f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise AssignmentError([f"{path}: the top level must be a mapping with id, title, starter, rubric"])
    try:
        data = AssignmentFileSchema(limits=limits).load(raw)
    except ValidationError as exc:
        raise AssignmentError([f"{path}: {line}" for line in error_lines(exc.messages)]) from exc
    return Assignment(source=str(path), **data)


def load_directory(directory: str | Path, limits: Limits | None = None) -> dict[str, Assignment]:
    """Every assignment file in `directory` (not recursive; dotfiles skipped), by id."""
    root = Path(directory)
    if not root.is_dir():
        raise AssignmentError([f"{root}: GRADSTAB_ASSIGNMENTS_DIR is not a directory"])
    found: dict[str, Assignment] = {}
    problems: list[str] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.suffix not in SUFFIXES or not path.is_file():
            continue
        try:
            assignment = load_file(path, limits)
        except AssignmentError as exc:
            problems += exc.problems
            continue
        if assignment.id in found:
            problems.append(f"{path}: id {assignment.id!r} is already used by {found[assignment.id].source}")
            continue
        found[assignment.id] = assignment
    if problems:
        raise AssignmentError(problems)
    return found
