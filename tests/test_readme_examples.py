"""Every shell example in README.md and examples/README.md runs as written, under the default settings.

The commands are extracted from the documents' ```sh blocks (tests/readme_examples.py). Each must
match exactly one rule below: RUN (run with bash against a real server started as `make run` starts it,
its output checked) or SKIP (with the reason it cannot run here). A new example without a rule fails
`test_every_example_has_a_rule`, so an example cannot be added unchecked; a default that breaks one
fails `test_examples_run_as_written`. The only rewrites: the documented port 8000 becomes the test
server's, and placeholders (`<id>`, SPEC.json, GRID.json) become a real id or file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.readme_examples import Command, all_commands
from tests.servers import running_server, server_env

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
KEY = "readme-example-key"


@dataclass
class Run:
    """Output of one example: exit code, stdout, and the HTTP status where curl -i printed one."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def status(self) -> int:
        m = re.match(r"HTTP/\S+ (\d{3})", self.stdout)
        assert m, self.stdout[:300]
        return int(m.group(1))

    @property
    def headers(self) -> dict[str, str]:
        head = self.stdout.split("\n\n", 1)[0]
        return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head.splitlines()[1:] if ":" in line)}

    @property
    def body(self) -> Any:
        text = self.stdout.split("\n\n", 1)[1] if self.stdout.startswith("HTTP/") else self.stdout
        return json.loads(text)


def report(run: Run, ctx: dict[str, str]) -> None:
    body = run.body
    assert body["diagnosis"]["verdict"] in ("exploding", "vanishing", "stable") and body["layers"], body


def text_summary(run: Run, ctx: dict[str, str]) -> None:
    assert "EXPLODING" in run.stdout and "Per layer" in run.stdout, run.stdout


def report_after_make_line(run: Run, ctx: dict[str, str]) -> None:
    """`make analyze` echoes its command line first; the report is the last line."""
    body = json.loads(run.stdout.strip().splitlines()[-1])
    assert body["diagnosis"]["verdict"] == "vanishing", body["diagnosis"]  # the spec is named for it


def sweep_accepted(run: Run, ctx: dict[str, str]) -> None:
    assert run.status == 202, run.stdout
    body = run.body
    assert run.headers["location"] == f"/v1/jobs/{body['id']}"
    assert body["progress"] == {"done": 0, "total": 4} or body["status"] != "queued"
    ctx["id"] = body["id"]


def job_read(run: Run, ctx: dict[str, str]) -> None:
    body = run.body
    assert body["id"] == ctx["id"] and body["kind"] == "sweep" and body["progress"]["total"] == 4, body


def job_cancelled(run: Run, ctx: dict[str, str]) -> None:
    body = run.body
    assert body["id"] == ctx["id"] and body["status"] in ("cancelled", "succeeded"), body  # may have finished


def analysis_job_accepted(run: Run, ctx: dict[str, str]) -> None:
    assert run.status == 202, run.stdout
    assert run.body["kind"] == "analysis"


def sweep_csv(run: Run, ctx: dict[str, str]) -> None:
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert len(rows) == 4 and {r["verdict"] for r in rows} <= {"exploding", "vanishing", "stable"}, run.stdout


def sweep_json(run: Run, ctx: dict[str, str]) -> None:
    body = run.body
    assert body["status"] == "succeeded" and len(body["result"]["points"]) == 4, body


def lr_sweep(run: Run, ctx: dict[str, str]) -> None:
    answers = {
        a["params"]["weight_scale"]: a["largest_stable_learning_rate"]
        for a in run.body["result"]["largest_stable_learning_rate"]
    }
    assert answers[1.0] > answers[1.2] > answers[1.4], answers  # a growing gradient lowers the stable rate


def finished(server: str, ctx: dict[str, str]) -> None:
    """A reader draws the sweep once it is done: wait for the job (in-process, seconds)."""
    import time
    import urllib.request

    deadline = time.monotonic() + 120
    while True:
        with urllib.request.urlopen(f"{server}/v1/jobs/{ctx['id']}", timeout=30) as resp:
            job = json.loads(resp.read())
        if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            assert job["status"] == "succeeded", job
            return
        time.sleep(0.2)


def svg_file(run: Run, ctx: dict[str, str]) -> None:
    svg = Path(ctx["tmp"], "phase.svg").read_text()
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "Phase diagram" in svg, svg[:200]


def html_file(run: Run, ctx: dict[str, str]) -> None:
    page = Path(ctx["tmp"], "phase.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 1, page[:200]


def ready(run: Run, ctx: dict[str, str]) -> None:
    assert run.body["status"] == "ready"


def gradescope_results(run: Run, ctx: dict[str, str]) -> None:
    body = run.body
    assert {"score", "output", "tests"} <= set(body) and len(body["tests"]) == 5, body


@dataclass(frozen=True)
class Rule:
    pattern: str  # re.search against the command as written
    check: Callable[[Run, dict[str, str]], None] | None = None  # None: skipped
    reason: str = ""  # why it is skipped
    placeholders: dict[str, str] = field(default_factory=dict)
    order: int = 0  # run after the rules of lower order (the heavy job last: stopping the server ends it)
    before: Callable[[str, dict[str, str]], None] | None = None  # what a reader waits for first
    timeout_s: float = 300

    def matches(self, command: Command) -> bool:
        return re.search(self.pattern, command.text) is not None


NO_DOCKER = "no Docker engine here: tests/deploy checks the Dockerfile and docker-compose.yml statically"
RULES = [
    Rule(r"^curl -s localhost:8000/v1/analyses ", report),
    Rule(r"^\.venv/bin/python -m service analyze examples/specs/\S+\.json$", report),
    Rule(r"^\.venv/bin/python -m service analyze examples/specs/\S+\.json --format text$", text_summary),
    Rule(
        r"^\.venv/bin/python -m service analyze SPEC\.json$",
        report,
        placeholders={"SPEC.json": "examples/specs/relu_kaiming_stable.json"},
    ),
    Rule(r"^make analyze SPEC=examples/specs/sigmoid_vanishing\.json$", report_after_make_line),
    Rule(r"^curl -si localhost:8000/v1/sweeps ", sweep_accepted),
    Rule(r"^curl -s localhost:8000/v1/jobs/<id>$", job_read),
    Rule(r"^curl -s -X DELETE localhost:8000/v1/jobs/<id>$", job_cancelled, order=1),
    Rule(r"^curl -si localhost:8000/v1/jobs ", analysis_job_accepted, order=2),
    Rule(r"sweep examples/sweeps/relu_init_depth\.json --format csv$", sweep_csv),
    Rule(r"sweep examples/sweeps/relu_learning_rate_weight_scale\.json$", lr_sweep),
    Rule(
        r"sweep GRID\.json --server http://127\.0\.0\.1:8000$",
        sweep_json,
        placeholders={"GRID.json": "{grid_file}"},
    ),
    Rule(r"^curl -s localhost:8000/readyz$", ready),
    Rule(
        r"^curl -s localhost:8000/v1/jobs/<id> -H 'Accept: image/svg\+xml' -o phase\.svg$",
        svg_file,
        placeholders={"phase.svg": "{tmp}/phase.svg"},
    ),
    Rule(
        r"^curl -s localhost:8000/v1/jobs/<id> -H 'Accept: text/html' -o phase\.html$",
        html_file,
        placeholders={"phase.html": "{tmp}/phase.html"},
    ),
    Rule(r'^curl -s -H "Authorization: Bearer \$KEY" .*localhost:8000/v1/grade ', gradescope_results),
    Rule(r"^make run$", reason="the server itself: this test starts `python -m service serve`, what make run runs"),
    Rule(r"^\.venv/bin/python -m service serve$", reason="the server itself, started by this test"),
    Rule(r"^make test$", reason="the test suite this test belongs to"),
    Rule(r"^redis-server ", reason="a daemon on the machine's port 6379; .ci/run starts its own for the Redis tests"),
    Rule(
        r"^REDIS_URL=\S+ make run$",
        reason="the server on Redis: tests/jobs/test_queue_health.py and test_redis_workers.py",
    ),
    Rule(
        r"^(REDIS_URL=\S+ )?make worker$",
        reason="a worker runs until stopped: tests/jobs/test_queue_health.py runs `python -m service worker --burst`",
    ),
    Rule(r"^(TORCH_CUDA_VARIANT=\S+ )?docker ", reason=NO_DOCKER),
]


def rule_for(command: Command) -> Rule:
    found = [r for r in RULES if r.matches(command)]
    assert len(found) == 1, f"{command}\nmatches {len(found)} rules of tests/test_readme_examples.py; give it one"
    return found[0]


def test_every_example_has_a_rule() -> None:
    commands = all_commands()
    assert len(commands) >= 20
    used = {id(rule_for(c)) for c in commands}
    stale = [r.pattern for r in RULES if id(r) not in used]
    assert not stale, f"rules that match no example any more: {stale}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make run` with the defaults: `python -m service serve`, no keys, in-process jobs, one worker."""
    env = server_env(1) | {
        "GRADSTAB_GRACEFUL_TIMEOUT": "1",
        "GRADSTAB_JOBS_DB": str(tmp_path_factory.mktemp("jobs") / "jobs.db"),
    }
    for name in ("REDIS_URL", "GRADSTAB_API_KEYS", "GRADSTAB_API_KEYS_FILE"):
        env.pop(name, None)
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server([sys.executable, "-m", "service", "serve"], env, cwd=ROOT, log_path=log) as handle:
        yield handle.url


def run(command: Command, rule: Rule, server: str, ctx: dict[str, str]) -> Run:
    port = server.rsplit(":", 1)[1]
    text = command.text.replace("localhost:8000", f"127.0.0.1:{port}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    for placeholder, value in rule.placeholders.items():
        text = text.replace(placeholder, value.format(**ctx))
    text = text.replace("<id>", ctx.get("id", "<id>"))
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "KEY": KEY}
    # As a reader types it: not inside `make test` (whose MAKEFLAGS would make `make analyze` a sub-make that
    # announces its directories), and without a key of the caller's.
    for name in ("GRADSTAB_API_KEY", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):
        env.pop(name, None)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", text],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=rule.timeout_s,
    )
    assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return Run(done.returncode, done.stdout, done.stderr)


def test_the_analysis_job_example_is_past_the_synchronous_budget(server: str) -> None:
    """The README sends it to POST /v1/jobs because POST /v1/analyses refuses it: both must stay true."""
    import urllib.error
    import urllib.request

    job = next(c for c in all_commands() if rule_for(c).check is analysis_job_accepted)
    spec = json.loads(re.search(r"-d '(.*)'", job.text, re.S).group(1))["analysis"]
    req = urllib.request.Request(
        server + "/v1/analyses", json.dumps(spec).encode(), {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=60)
    assert refused.value.code == 422
    assert "GRADSTAB_MAX_GFLOP" in refused.value.read().decode()


# GRID.json of `sweep GRID.json --server`: not the README's own sweep, which an earlier example cancels (a
# resubmission of the same request returns that job, cancelled, until GRADSTAB_JOB_TTL).
OWN_GRID = {"base": {"layers": {"depth": 10, "width": 64}}, "grid": {"weight_scale": [0.5, 1.0, 2.0, 4.0]}}


def test_examples_run_as_written(server: str, tmp_path: Path) -> None:
    commands = [(c, rule_for(c)) for c in all_commands()]
    runnable = sorted(((c, r) for c, r in commands if r.check is not None), key=lambda cr: cr[1].order)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(OWN_GRID))
    ctx: dict[str, str] = {"grid_file": str(grid), "tmp": str(tmp_path)}
    for command, rule in runnable:
        assert rule.check is not None
        if rule.before is not None:
            rule.before(server, ctx)
        rule.check(run(command, rule, server, ctx), ctx)
