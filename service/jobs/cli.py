"""`gradstab sweep GRID.json`: a sweep on this machine (in-process) or on a server (--server URL).

GRID.json is the POST /v1/sweeps body: {"base": spec, "grid": {...}, "summary"?: [...]}. Output
is the job as GET /v1/jobs/{id} returns it (--format json) or one CSV row per point (--format csv).
No Flask: the local run uses the schemas and the jobs package; the remote one only urllib.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

CSV_FIELDS = [
    "index",
    "verdict",
    "log10_total_growth",
    "growth_per_layer",
    "onset_layer",
    "overflow",
    "underflow",
    "chi",
    "predicted_log10_total_growth",
    "report_id",
    "error",
]


def _iso(value: Any) -> str:
    """Times as the API writes them (ISO 8601 with a `T`), not str(datetime)'s space."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def run_local(body: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from marshmallow import ValidationError

    from schemas.jobs import SweepRequestSchema
    from service.config import Settings

    from .runner import run_points
    from .service import as_dict
    from .store import SQLiteJobStore, view

    app_settings = Settings.from_env()
    settings = app_settings.jobs
    try:
        plan = SweepRequestSchema(limits=app_settings.limits, jobs=settings).load(body)
    except ValidationError as exc:
        raise SystemExit(f"error: invalid sweep: {json.dumps(exc.messages)}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteJobStore(os.path.join(tmp, "jobs.sqlite3"))
        from .model import JobRecord, now

        record = JobRecord(id=plan.id, kind="sweep", total=len(plan.points), created_at=now(), plan=plan.to_dict())
        store.create(record, settings.ttl_s)
        task = progress.add_task("sweep", total=record.total)
        for index in range(record.total):
            run_points(store, settings.ttl_s, record.id, [index])
            progress.update(task, completed=index + 1)
        found = view(store, record.id, with_plan=True)
        assert found is not None
        return json.loads(json.dumps(as_dict(found), default=_iso))


def _request(method: str, url: str, body: Any = None, api_key: str | None = None) -> tuple[dict[str, Any], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if api_key:
        req.add_header("X-API-Key", api_key)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"error: {exc.code} {exc.read().decode(errors='replace')}") from exc


def run_remote(body: dict[str, Any], server: str, api_key: str | None, progress: Progress) -> dict[str, Any]:
    server = server.rstrip("/")
    job, headers = _request("POST", f"{server}/v1/sweeps", body, api_key)
    location = server + headers.get("Location", f"/v1/jobs/{job['id']}")
    task = progress.add_task("sweep", total=job["progress"]["total"])
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.5)
        job, _ = _request("GET", location, api_key=api_key)
        progress.update(task, completed=job["progress"]["done"])
    return job


def to_csv(job: dict[str, Any]) -> str:
    points = (job.get("result") or {}).get("points", [])
    axes = list((job.get("result") or {}).get("axes", {}))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=axes + CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for p in points:
        row = {**p.get("params", {}), **{k: p.get(k) for k in CSV_FIELDS}}
        row["overflow"] = (p.get("overflow") or {}).get("occurred")
        row["underflow"] = (p.get("underflow") or {}).get("occurred")
        row["chi"] = (p.get("theory") or {}).get("chi")
        row["predicted_log10_total_growth"] = (p.get("theory") or {}).get("predicted_log10_total_growth")
        writer.writerow(row)
    return out.getvalue()


def main(argv: list[str] | None = None, prog: str = "gradstab sweep") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("grid", help="a POST /v1/sweeps body as JSON, or - for stdin")
    parser.add_argument("--server", help="run on this server (e.g. http://127.0.0.1:8000) instead of locally")
    parser.add_argument("--api-key", default=os.environ.get("GRADSTAB_API_KEY"), help="sent as X-API-Key")
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--output", "-o", help="write here instead of stdout")
    args = parser.parse_args(argv)
    raw = sys.stdin.read() if args.grid == "-" else Path(args.grid).read_text()
    body = json.loads(raw)
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        job = run_remote(body, args.server, args.api_key, progress) if args.server else run_local(body, progress)
    text = to_csv(job) if args.format == "csv" else json.dumps(job, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0 if job["status"] == "succeeded" else 1
