"""The report cache never reveals another caller's request (issue 20 item 4): `cache.hit` and `X-Cache` agree
and reflect only the caller's own history, per key and per student an instructor key names; and student keys
are not served, by default, from what others put in the cache (GRADSTAB_CACHE_SHARE_STUDENTS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from service.api.ratelimit import STUDENT_HEADER

from .apps import INSTRUCTOR_KEY, KEYS, SPEC, STUDENT_KEY, bearer, make_app, write_assignment

SUBMISSION = {"spec": {**SPEC, "seed": 777}, "answers": {"g": 0.3}}


def _submit(client: FlaskClient, key: str, student: str | None = None) -> tuple[str, Any]:
    headers = bearer(key) | ({STUDENT_HEADER: student} if student else {})
    resp = client.post(
        "/v1/assignments/tiny/submissions",
        data=json.dumps(SUBMISSION),
        content_type="application/json",
        headers=headers,
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.headers["X-Cache"], resp.get_json()["cache"]["hit"]


def _hits(client: FlaskClient) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    line = next(
        (ln for ln in text.splitlines() if ln.startswith('gradstab_report_cache_total{backend="memory",result="hit"}')),
        None,
    )
    return float(line.split()[-1]) if line else 0.0


def test_a_student_key_learns_nothing_of_the_instructors_submission(tmp_path: Path) -> None:
    client = make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_ASSIGNMENTS_DIR=str(write_assignment(tmp_path))).test_client()
    assert _submit(client, INSTRUCTOR_KEY) == ("miss", False)
    assert _submit(client, STUDENT_KEY) == ("miss", False)  # header and body agree
    assert _hits(client) == 0  # not shared by default: the student's first request ran the engine
    assert _submit(client, STUDENT_KEY) == ("hit", True)  # its own repeat


def test_students_of_one_instructor_key_see_only_their_own_history(tmp_path: Path) -> None:
    client = make_app(GRADSTAB_API_KEYS=KEYS, GRADSTAB_ASSIGNMENTS_DIR=str(write_assignment(tmp_path))).test_client()
    assert _submit(client, INSTRUCTOR_KEY, "alice") == ("miss", False)
    assert _submit(client, INSTRUCTOR_KEY, "bob") == ("miss", False)  # served from the cache, told a miss
    assert _hits(client) == 1  # the autograder's students share the cache: one analysis
    assert _submit(client, INSTRUCTOR_KEY, "alice") == ("hit", True)


def test_sharing_with_student_keys_can_be_turned_on(tmp_path: Path) -> None:
    client = make_app(
        GRADSTAB_API_KEYS=KEYS,
        GRADSTAB_ASSIGNMENTS_DIR=str(write_assignment(tmp_path)),
        GRADSTAB_CACHE_SHARE_STUDENTS="on",
    ).test_client()
    assert _submit(client, INSTRUCTOR_KEY) == ("miss", False)
    assert _submit(client, STUDENT_KEY) == ("miss", False)  # still told a miss ...
    assert _hits(client) == 1  # ... though served from the cache
