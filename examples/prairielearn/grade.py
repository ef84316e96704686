#!/usr/bin/env python3
"""PrairieLearn external grader: send the student's spec to the service, write /grade/results/results.json.

Question info.json (networking must be on, since the grader calls the service):

    "externalGradingOptions": {
      "enabled": true, "image": "prairielearn/grader-python",
      "serverFilesCourse": ["gradstab/"],
      "entrypoint": "python3 /grade/serverFilesCourse/gradstab/grade.py",
      "enableNetworking": true, "timeout": 120,
      "environment": {"GRADSTAB_URL": "https://gradstab.example.edu",
                      "GRADSTAB_ASSIGNMENT": "sigmoid-depth-30", "GRADSTAB_DEADLINE": "100"}
    }

Put this file and the gradstab_client folder in serverFilesCourse/gradstab/, and the instructor key in
serverFilesCourse/gradstab/api_key (students cannot read serverFilesCourse) or GRADSTAB_API_KEY.
The student's files are /grade/student/spec.json and optionally answers.json. GRADE_ROOT
overrides /grade for testing. A refused spec comes back `gradable: false`: no attempt is used.
Every failure writes results.json and exits 0: a wrong setup (no or bad GRADSTAB_URL, GRADSTAB_ASSIGNMENT,
GRADSTAB_DEADLINE, a refused key) and a service that is down, slow or failing are `gradable: false` with a
message saying it is not the student's fault; unreadable student files are `gradable: false` with
`format_errors` saying what to fix; anything unforeseen is `gradable: false` with its reason.

GRADSTAB_DEADLINE (default 100 s) bounds the whole run: keep it below the question's `timeout`
(PrairieLearn's default is 30 s, its maximum 600 s; past it the job is killed and reported as a
failure). On expiry the result is `gradable: false`, score 0, saying the service was unreachable.
The student's rate-limit bucket (X-Gradstab-Student) is GRADSTAB_STUDENT if set, else the variant
seed from /grade/data/data.json (PrairieLearn gives the grader no user id; a variant is one student's).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("GRADE_ROOT", "/grade"))
sys.path[:0] = [str(HERE), str(HERE.parent / "client")]

from gradstab_client import ApiError, DeadlineExceeded, GradstabClient, GradstabError  # noqa: E402

DEADLINE = 100.0  # seconds, below the 120 s `timeout` of the info.json above
SLACK = 3.0  # kept back for writing results.json
NOT_YOUR_FAULT = "This is not a problem with your submission, and it used up no attempt."


class Misconfigured(Exception):
    """The question's grader setup (environment, key file) is wrong: the instructor's to fix."""


class BadSubmission(Exception):
    """The student's files cannot be read as a submission."""


def student_id() -> str | None:
    if os.environ.get("GRADSTAB_STUDENT"):
        return os.environ["GRADSTAB_STUDENT"]
    try:
        seed = json.loads((ROOT / "data" / "data.json").read_text()).get("variant_seed")
    except (OSError, ValueError, AttributeError):
        return None
    return f"prairielearn:variant-{seed}" if seed is not None else None


def not_gradable(message: str) -> dict:
    """Not gradable (no attempt used up), score 0; PrairieLearn shows `format_errors` to the student."""
    return {"gradable": False, "score": 0.0, "message": message, "format_errors": [message]}


def config() -> tuple[str, str | None, str, float]:
    """URL, API key, assignment, deadline (seconds), checked before any request."""
    url, assignment = os.environ.get("GRADSTAB_URL", ""), os.environ.get("GRADSTAB_ASSIGNMENT", "")
    missing = [name for name, value in (("GRADSTAB_URL", url), ("GRADSTAB_ASSIGNMENT", assignment)) if not value]
    if missing:
        raise Misconfigured(f"the question sets no {' and no '.join(missing)} (externalGradingOptions.environment)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Misconfigured(f"GRADSTAB_URL {url!r} is not an http:// or https:// URL")
    raw = os.environ.get("GRADSTAB_DEADLINE") or str(DEADLINE)
    try:
        deadline = float(raw)
    except ValueError:
        deadline = -1.0
    if not deadline > SLACK:
        raise Misconfigured(f"GRADSTAB_DEADLINE {raw!r} is not a number of seconds above {SLACK:g}")
    key_file = HERE / "api_key"
    try:
        api_key = os.environ.get("GRADSTAB_API_KEY") or (key_file.read_text().strip() if key_file.is_file() else None)
    except (OSError, UnicodeDecodeError) as exc:
        raise Misconfigured(f"the key file {key_file.name} cannot be read ({exc})") from exc
    return url, api_key or None, assignment, deadline


def _json_object(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BadSubmission(f"Submit {path.name}: {what}.") from exc
    except UnicodeDecodeError as exc:
        raise BadSubmission(f"{path.name} is not a text file ({exc.reason}); submit {what} as JSON.") from exc
    except ValueError as exc:
        raise BadSubmission(f"{path.name} is not valid JSON: {exc}.") from exc
    except OSError as exc:
        raise BadSubmission(f"{path.name} cannot be read: {exc.strerror}.") from exc
    if not isinstance(data, dict):
        raise BadSubmission(f"{path.name} must hold a JSON object ({{...}}), {what}; it holds a {type(data).__name__}.")
    return data


def read_submission() -> tuple[dict, dict]:
    answers_path = ROOT / "student" / "answers.json"
    answers = _json_object(answers_path, '{"name": value}') if answers_path.is_file() else {}
    return _json_object(ROOT / "student" / "spec.json", "your model spec"), answers


def grade(started: float) -> dict:
    try:
        url, api_key, assignment, deadline = config()
    except Misconfigured as exc:
        return not_gradable(f"The grader is not set up correctly: {exc}. {NOT_YOUR_FAULT}")
    try:
        spec, answers = read_submission()
    except BadSubmission as exc:
        return {"gradable": False, "format_errors": [str(exc)]}
    budget = max(1.0, deadline - SLACK - (time.monotonic() - started))
    client = GradstabClient(url, api_key, timeout=100, retries=4, deadline=budget)
    try:
        results = client.submit(assignment, spec, answers, fmt="prairielearn", student=student_id())
    except DeadlineExceeded as exc:
        return not_gradable(f"The grading service was unreachable: no answer within {budget:.0f} s ({exc}).")
    except ApiError as exc:
        if exc.status in (401, 403, 404):
            what = "the grader's API key" if exc.status != 404 else f"the assignment {assignment!r}"
            return not_gradable(
                f"The grader is not set up correctly: the service refused {what} ({exc}). {NOT_YOUR_FAULT}"
            )
        return not_gradable(f"The grading service refused or failed: {exc}. {NOT_YOUR_FAULT}")
    except GradstabError as exc:
        return not_gradable(f"The grading service was unreachable or failed: {exc}")
    except ValueError as exc:  # a 2xx whose body is not JSON (a proxy's page, say)
        return not_gradable(f"The grading service answered something that is not JSON ({exc}). {NOT_YOUR_FAULT}")
    if not isinstance(results, dict) or not ("gradable" in results or isinstance(results.get("score"), (int, float))):
        return not_gradable(f"The grading service answered without a score. {NOT_YOUR_FAULT}")
    return results


def main() -> int:
    started = time.monotonic()
    results_path = ROOT / "results" / "results.json"
    try:
        results = grade(started)
    except Exception as exc:  # whatever went wrong, the student gets a result and a sentence, not a platform error
        traceback.print_exc()
        results = not_gradable(f"The grader failed unexpectedly ({type(exc).__name__}: {exc}). {NOT_YOUR_FAULT}")
    results_path.parent.mkdir(parents=True, exist_ok=True)  # PrairieLearn does not create it
    results_path.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
