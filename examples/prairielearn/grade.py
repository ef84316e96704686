#!/usr/bin/env python3
"""PrairieLearn external grader: send the student's spec to the service, write /grade/results/results.json.

Question info.json (networking must be on, since the grader calls the service):

    "externalGradingOptions": {
      "enabled": true, "image": "prairielearn/grader-python",
      "serverFilesCourse": ["gradstab/"],
      "entrypoint": "python3 /grade/serverFilesCourse/gradstab/grade.py",
      "enableNetworking": true, "timeout": 120,
      "environment": {"GRADSTAB_URL": "https://gradstab.example.edu",
                      "GRADSTAB_ASSIGNMENT": "sigmoid-depth-30"}
    }

Put this file and gradstab_client.py in serverFilesCourse/gradstab/, and the instructor key in
serverFilesCourse/gradstab/api_key (students cannot read serverFilesCourse) or GRADSTAB_API_KEY.
The student's files are /grade/student/spec.json and optionally answers.json. GRADE_ROOT
overrides /grade for testing. A refused spec comes back `gradable: false`: no attempt is used.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("GRADE_ROOT", "/grade"))
sys.path[:0] = [str(HERE), str(HERE.parent / "client")]

from gradstab_client import GradstabClient, GradstabError  # noqa: E402


def main() -> int:
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
        client = GradstabClient(os.environ["GRADSTAB_URL"], api_key, timeout=100, retries=4)
        try:
            results = client.submit(os.environ["GRADSTAB_ASSIGNMENT"], spec, answers, fmt="prairielearn")
        except GradstabError as exc:
            # Not the student's fault: not gradable, so no attempt is used up.
            results = {"gradable": False, "format_errors": [f"The grading service failed: {exc}"]}
    results_path.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
