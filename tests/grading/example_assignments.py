"""Grading the example assignments (examples/assignments/) through the API, shared by their tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from service.api.app import create_app
from service.config import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "assignments"


def assignments_app() -> Flask:
    settings = Settings.from_env({"GRADSTAB_RATE_LIMIT": "off", "GRADSTAB_ASSIGNMENTS_DIR": str(EXAMPLES)})
    return create_app({"TESTING": True, "GRADSTAB_SETTINGS": settings})


def submit(app: Flask, assignment: str, spec: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    r = app.test_client().post(f"/v1/assignments/{assignment}/submissions", json={"spec": spec, "answers": answers})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def passed(result: dict[str, Any]) -> dict[str, bool]:
    """Each check's name → whether it passed."""
    return {c["name"]: c["passed"] for c in result["checks"]}
