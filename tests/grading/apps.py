"""Test apps for the autograder features: small limits, configured through the Flask config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask

from schemas.limits import Limits
from service.api.app import create_app
from service.config import Settings

LIMITS = Limits(
    max_depth=40,
    max_width=32,
    max_batch_size=16,
    max_parameters=50_000,
    max_gflop=0.5,
    max_memory_mib=64.0,
    max_body_bytes=50_000,
)
SPEC: dict[str, Any] = {
    "layers": {"depth": 6, "width": 8},
    "activation": "sigmoid",
    "init": "normal",
    "weight_scale": 0.25,
    "verify_recommendations": False,
}
INSTRUCTOR_KEY = "instructor-key-0123456789"
STUDENT_KEY = "student-key-0123456789ab"
KEYS = f"prof:{INSTRUCTOR_KEY},alice:{STUDENT_KEY}:student"

ASSIGNMENT = """id: tiny
title: Tiny sigmoid net
instructions: Change init and weight_scale only.
starter: {layers: {depth: 6, width: 8}, activation: sigmoid, init: normal, weight_scale: 0.25,
          verify_recommendations: false}
may_change: [init, weight_scale]
answers: {g: growth per layer}
rubric:
  checks:
    - {kind: constraint, name: shape, points: 0, equals: {depth: 6, activation: sigmoid},
       may_change: [init, weight_scale]}
    - {kind: value, name: "no overflow", points: 1, pointer: /diagnosis/overflow/occurred, expected: false}
    - {kind: answer, name: growth, points: 2, answer: g, pointer: /diagnosis/growth_per_layer, rel_tol: 0.05}
    - {kind: value, name: "secret band", points: 3, visibility: hidden, pointer: /diagnosis/log10_total_growth,
       min: -1, max: 1, feedback: "SECRET-HINT {/diagnosis/log10_total_growth:.2f}"}
"""


def write_assignment(directory: Path, text: str = ASSIGNMENT, name: str = "tiny.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def make_app(**config: Any) -> Flask:
    """Environment variables (GRADSTAB_*, REDIS_URL) go through Settings.from_env, the rest to Flask."""
    env = {"GRADSTAB_RATE_LIMIT": "off"} | {k: str(v) for k, v in config.items() if _is_env(k)}
    settings = replace(Settings.from_env(env), limits=LIMITS, max_json_depth=16)
    flask_config = {k: v for k, v in config.items() if not _is_env(k)}
    return create_app({"TESTING": True, "GRADSTAB_SETTINGS": settings} | flask_config)


def _is_env(name: str) -> bool:
    return name.startswith("GRADSTAB_") or name == "REDIS_URL"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
