"""`python -m service analyze SPEC.json|-` (offline: the API's exact JSON, or --format text for people) and
`python -m service serve`; `sweep` and `worker` have their own parsers in service.jobs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

# A module, not a file path: found wherever the package is installed, from any directory.
GUNICORN_CONFIG = "python:service.gunicorn_conf"
EXIT_BAD_SPEC = 2


def _fail(detail: str, errors: list[dict[str, str]] | None = None) -> int:
    print(f"error: {detail}", file=sys.stderr)
    for e in errors or []:
        print(f"  {e['field']}: {e['message']}", file=sys.stderr)
    return EXIT_BAD_SPEC


def prog_name(argv0: str | None = None) -> str:
    """The command as the user typed it, for --help: `gradstab` (the console script) or `python -m service`."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    return "python -m service" if name in ("", "-c", "__main__.py") else name


def _run_analysis(reports: Any, spec: Any) -> dict[str, Any]:
    """The report; with stage-by-stage progress on stderr where stderr is a terminal (never in a pipe or a log)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        return reports.report(spec).report
    from service.cli_progress import stage_progress

    with stage_progress(console):
        return reports.report(spec).report


def analyze_command(
    path: str, html: str | None = None, plot: str | None = None, fmt: str = "json", figure: str = "gradients"
) -> int:
    """Same parser, schema, limits, report service and encoder as POST /v1/analyses; no Flask.
    --html/--plot also write the pictures (--figure: which one --plot draws); --format text prints a summary for
    people instead of the JSON."""
    from schemas.errors import describe_invalid
    from schemas.figures import unavailable
    from schemas.jsonio import BodyError, dumps, loads_body
    from schemas.spec import ModelSpecSchema
    from service.application.reports import ReportService
    from service.config import Settings
    from service.engine.errors import SpecError

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
        if plot and (why := unavailable(figure, spec)):  # before the work, not after
            return _fail(why, [{"field": "figure", "message": why}])
        report = _run_analysis(ReportService.uncached(settings.limits.auto_exact_gflop), spec)
    except BodyError as exc:
        return _fail(exc.detail)
    except ValidationError as exc:
        invalid = describe_invalid(exc.messages)
        return _fail(invalid.detail, invalid.errors)
    except SpecError as exc:
        return _fail(exc.message, [{"field": exc.field, "message": exc.message}])
    if html or plot:
        from service.plots.files import write_outputs

        try:
            write_outputs(report, html=html, plot=plot, figure=figure)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
    if fmt == "text":
        from service.cli_text import print_summary

        print_summary(report)
    else:
        sys.stdout.write(dumps(report) + "\n")
    return 0


def serve_command(extra: list[str]) -> int:
    """Replace this process with gunicorn (HOST/PORT and the rest from the environment)."""
    argv = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, *extra, "service.wsgi:app"]
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - exec does not return


def main(argv: list[str] | None = None) -> int:
    from schemas.figures import FIGURES
    from service import __version__

    prog = prog_name()
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--version", action="version", version=f"gradstab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser(
        "analyze",
        help="analyse one spec and print the report (JSON, or --format text)",
        description="Analyse one spec, offline. The output is the JSON POST /v1/analyses returns (the default, for "
        "scripts), or with --format text a summary for people. Progress goes to stderr when it is a terminal.",
    )
    analyze.add_argument("spec", help="a JSON spec file, or - for stdin")
    analyze.add_argument("--html", metavar="FILE", help="also write the report as one self-contained HTML page")
    analyze.add_argument("--plot", metavar="FILE", help="also write the main plot (FILE.svg or FILE.png)")
    analyze.add_argument(
        "--figure",
        choices=tuple(FIGURES),
        default="gradients",
        help="which picture --plot draws: " + "; ".join(f"{k}: {v}" for k, v in FIGURES.items()),
    )
    analyze.add_argument(
        "--format",
        choices=("json", "text"),
        default="json",
        help="json (default): the API's report, one line; text: verdict, growth, causes, fixes and a per-layer table",
    )
    serve = sub.add_parser("serve", help="run the HTTP service under gunicorn (HOST, PORT from the environment)")
    serve.add_argument("gunicorn_args", nargs=argparse.REMAINDER, help="extra gunicorn options")
    sub.add_parser("sweep", help="run a sweep locally or on a server (see: sweep --help)", add_help=False)
    sub.add_parser("worker", help="run a job-queue worker (RQ; needs REDIS_URL)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("sweep", "worker"):  # their own parsers, in service.jobs (no Flask)
        from service.jobs import cli as jobs_cli
        from service.jobs import worker

        return (jobs_cli.main if argv[0] == "sweep" else worker.main)(argv[1:], prog=f"{prog} {argv[0]}")
    args = parser.parse_args(argv)
    if args.command == "analyze" and args.plot and not args.plot.lower().endswith((".svg", ".png")):
        parser.error(f"--plot {args.plot}: the file name must end in .svg or .png")
    if args.command == "analyze":
        return analyze_command(args.spec, html=args.html, plot=args.plot, fmt=args.format, figure=args.figure)
    return serve_command(args.gunicorn_args)
