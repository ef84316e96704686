"""`python -m service analyze SPEC.json|-` (offline, the API's exact JSON) and `python -m service serve`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from marshmallow import ValidationError

# A module, not a file path: found wherever the package is installed, from any directory.
GUNICORN_CONFIG = "python:service.gunicorn_conf"
EXIT_BAD_SPEC = 2


def _fail(detail: str, errors: list[dict[str, str]] | None = None) -> int:
    print(f"error: {detail}", file=sys.stderr)
    for e in errors or []:
        print(f"  {e['field']}: {e['message']}", file=sys.stderr)
    return EXIT_BAD_SPEC


def analyze_command(path: str) -> int:
    """Same parser, schema, limits, engine and encoder as POST /v1/analyses."""
    from schemas.report import dump_report
    from schemas.spec import ModelSpecSchema
    from service.api.analyses import run_analysis
    from service.api.errors import ProblemError, flatten_messages, validation_problem
    from service.api.jsonio import BodyError, dumps, loads_body
    from service.config import Settings

    settings = Settings.from_env()
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror}")
    try:
        body = loads_body(raw, settings.max_json_depth)
        if not isinstance(body, dict):
            return _fail("the spec must be a JSON object", [{"field": "body", "message": "Expected a JSON object."}])
        spec = ModelSpecSchema(limits=settings.limits).load(body)
        report = run_analysis(spec, settings)
    except BodyError as exc:
        return _fail(exc.detail)
    except ValidationError as exc:
        problem = validation_problem(exc.messages)
        return _fail(problem.detail, flatten_messages(exc.messages))
    except ProblemError as exc:
        return _fail(exc.detail, exc.errors)
    sys.stdout.write(dumps(dump_report(report)) + "\n")
    return 0


def serve_command(extra: list[str]) -> int:
    """Replace this process with gunicorn (HOST/PORT and the rest from the environment)."""
    argv = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, *extra, "service.wsgi:app"]
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - exec does not return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser("analyze", help="analyse one spec and print the report as JSON")
    analyze.add_argument("spec", help="a JSON spec file, or - for stdin")
    serve = sub.add_parser("serve", help="run the HTTP service under gunicorn (HOST, PORT from the environment)")
    serve.add_argument("gunicorn_args", nargs=argparse.REMAINDER, help="extra gunicorn options")
    sub.add_parser("sweep", help="run a sweep locally or on a server (see: sweep --help)", add_help=False)
    sub.add_parser("worker", help="run a job-queue worker (RQ; needs REDIS_URL)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("sweep", "worker"):  # their own parsers, in service.jobs (no Flask)
        from service.jobs import cli as jobs_cli
        from service.jobs import worker

        return (jobs_cli.main if argv[0] == "sweep" else worker.main)(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "analyze":
        return analyze_command(args.spec)
    return serve_command(args.gunicorn_args)
