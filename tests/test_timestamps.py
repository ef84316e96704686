"""Every timestamp the service produces is ISO 8601 with a `T` and a UTC offset: the API's jobs (202 and GET,
`waiting.since`), GET /v1/capabilities' queue, a local sweep on the command line, and every log line.

Which members are timestamps comes from /openapi.json (format date-time) plus the logs' `ts`, so a new
date-time member is checked here as soon as it is declared: the test fails until some output shows it.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.jobs.health import QueueHealth
from service.logs import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent
ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
SWEEP = {"base": {"layers": [4, 8, 8, 2], "batch_size": 4}, "grid": {"activation": ["tanh", "relu"]}}


def date_time_members(doc: dict[str, Any]) -> set[str]:
    return {
        name
        for schema in doc["components"]["schemas"].values()
        for name, prop in (schema.get("properties") or {}).items()
        if prop.get("format") == "date-time"
    }


def stamps(value: Any, names: set[str], where: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, member, value) of every member named in `names`, anywhere in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in names and v is not None:
                yield f"{where}/{k}", k, v
            yield from stamps(v, names, f"{where}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from stamps(v, names, f"{where}/{i}")


def test_every_timestamp_is_iso_8601(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.api.app import create_app
    from service.config import Settings

    env = {"GRADSTAB_JOBS_DB": str(tmp_path / "jobs.sqlite3"), "GRADSTAB_RATE_LIMIT": "off"}
    app = create_app({"TESTING": True, "GRADSTAB_SETTINGS": Settings.from_env(env)})
    client = app.test_client()
    doc = client.get("/openapi.json").get_json()
    names = date_time_members(doc) | {"ts"}
    assert {"created_at", "started_at", "finished_at", "since", "worker_seen_at"} <= names

    outputs: dict[str, Any] = {}
    jobs = app.extensions["gradstab"].jobs
    real_health = jobs.dispatcher.health
    seen_at = 1_700_000_000.25
    monkeypatch.setattr(jobs.dispatcher, "health", lambda: QueueHealth("rq", "q", 0, 2, 0, worker_seen_at=seen_at))
    outputs["202 while no worker"] = client.post("/v1/sweeps", json=SWEEP).get_json()
    outputs["capabilities while no worker"] = client.get("/v1/capabilities").get_json()
    monkeypatch.setattr(jobs.dispatcher, "health", real_health)
    location = f"/v1/jobs/{outputs['202 while no worker']['id']}"
    for _ in range(600):
        outputs["GET"] = client.get(location).get_json()
        if outputs["GET"]["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert outputs["GET"]["status"] == "succeeded"
    outputs["DELETE"] = client.delete(location).get_json()

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(SWEEP))
    cli = subprocess.run(
        [sys.executable, "-m", "service", "sweep", str(grid)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert cli.returncode == 0, cli.stderr
    outputs["local sweep (CLI)"] = json.loads(cli.stdout)

    record = logging.LogRecord("service.test", logging.INFO, __file__, 1, "hello", None, None)
    outputs["log line"] = json.loads(JsonFormatter().format(record))

    found = [
        (f"{source}{path}", member, v) for source, out in outputs.items() for path, member, v in stamps(out, names)
    ]
    bad = [(where, v) for where, _, v in found if not (isinstance(v, str) and ISO_8601.fullmatch(v))]
    assert not bad, bad
    assert {member for _, member, _ in found} == names, "a date-time member no output showed"
