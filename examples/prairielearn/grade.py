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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("GRADE_ROOT", "/grade"))
sys.path[:0] = [str(HERE), str(HERE.parent / "client")]

from gradstab_client import DeadlineExceeded, GradstabClient, GradstabError  # noqa: E402

DEADLINE = 100.0  # seconds, below the 120 s `timeout` of the info.json above
SLACK = 3.0  # kept back for writing results.json


def student_id() -> str | None:
    if os.environ.get("GRADSTAB_STUDENT"):
        return os.environ["GRADSTAB_STUDENT"]
    try:
        seed = json.loads((ROOT / "data" / "data.json").read_text()).get("variant_seed")
    except (OSError, ValueError, AttributeError):
        return None
    return f"prairielearn:variant-{seed}" if seed is not None else None


def unreachable(message: str) -> dict:
    """Not the student's fault: not gradable (no attempt used up), score 0."""
    return {"gradable": False, "score": 0.0, "message": message, "format_errors": [message]}


def main() -> int:
    started = time.monotonic()
    deadline = float(os.environ.get("GRADSTAB_DEADLINE") or DEADLINE)
    results_path = ROOT / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)  # PrairieLearn does not create it
    key_file = HERE / "api_key"
    api_key = os.environ.get("GRADSTAB_API_KEY") or (key_file.read_text().strip() if key_file.is_file() else None)
    try:
        spec = json.loads((ROOT / "student" / "spec.json").read_text())
        answers_path = ROOT / "student" / "answers.json"
        answers = json.loads(answers_path.read_text()) if answers_path.is_file() else {}
    except (OSError, ValueError) as exc:
        results = {"gradable": False, "format_errors": [f"Could not read spec.json: {exc}"]}
    else:
        budget = max(1.0, deadline - SLACK - (time.monotonic() - started))
        client = GradstabClient(os.environ["GRADSTAB_URL"], api_key, timeout=100, retries=4, deadline=budget)
        try:
            results = client.submit(
                os.environ["GRADSTAB_ASSIGNMENT"], spec, answers, fmt="prairielearn", student=student_id()
            )
        except DeadlineExceeded as exc:
            results = unreachable(f"The grading service was unreachable: no answer within {budget:.0f} s ({exc}).")
        except GradstabError as exc:
            results = unreachable(f"The grading service was unreachable or failed: {exc}")
    results_path.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
