"""The grading scripts write a valid results file, and exit 0, on every failure: one test per failure.

A wrong setup (URL, key, assignment, deadline, config.json), a service that refuses or answers
garbage, a malformed upload, and anything unforeseen. Each results file validates against the
platform's format, has score 0 (PrairieLearn: `gradable: false`, no attempt used) and a sentence a
student can read (no traceback). A server that is down, slow, trickling or overloaded is
tests/grading/test_examples_deadline.py's.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest

from .apps import SPEC
from .platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS
from .stub_service import stub_service

ROOT = Path(__file__).resolve().parents[2]
GRADESCOPE = ROOT / "examples" / "gradescope" / "run_autograder"
PRAIRIELEARN = ROOT / "examples" / "prairielearn" / "grade.py"

# What the stub service answers, by the first segment of the path (the scripts' URL ends in it).
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "key-refused": (401, "application/problem+json", b'{"status": 401, "detail": "Unknown API key."}'),
    "no-assignment": (404, "application/problem+json", b'{"status": 404, "detail": "No assignment nope."}'),
    "server-error": (500, "text/html", b"<html>Internal Server Error</html>"),
    "not-json": (200, "text/html", b"<html>a captive portal</html>"),
    "no-score": (200, "application/json", b'["not", "a", "result"]'),
}


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        status, media, body = ANSWERS[path.strip("/").split("/")[0]]
        return status, {"Content-Type": media}, body

    with stub_service(answer) as url:
        yield url


def run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GRADSTAB_", "AUTOGRADER_", "GRADE_ROOT"))}
    return subprocess.run([sys.executable, str(script)], env=clean | env, capture_output=True, text=True, timeout=120)


# ---- Gradescope ------------------------------------------------------------------------------------


def gradescope(tmp_path: Path, env: dict[str, str], files: dict[str, bytes] | None = None) -> dict:
    submission, source = tmp_path / "submission", tmp_path / "source"
    submission.mkdir()
    source.mkdir()
    default = {"spec.json": json.dumps(SPEC).encode()}
    for name, data in (default if files is None else files).items():
        if name == "config.json":
            (source / name).write_bytes(data)
        else:
            (submission / name).write_bytes(data)
    results = tmp_path / "results" / "results.json"
    paths = {
        "AUTOGRADER_SOURCE": str(source),
        "AUTOGRADER_SUBMISSION": str(submission),
        "AUTOGRADER_RESULTS": str(results),
        "AUTOGRADER_METADATA": str(tmp_path / "missing.json"),
        "GRADSTAB_DEADLINE": "20",
    }
    done = run(GRADESCOPE, paths | env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    out = json.loads(results.read_text())
    jsonschema.validate(out, GRADESCOPE_RESULTS)
    assert out["score"] == 0 and out["extra_data"]["gradable"] is False and "Traceback" not in out["output"]
    return out


def configured(url: str) -> dict[str, str]:
    return {"GRADSTAB_URL": url, "GRADSTAB_API_KEY": "k", "GRADSTAB_ASSIGNMENT": "tiny"}


GRADESCOPE_SETUP = {  # env → (reason, words the student reads)
    "no url": ({"GRADSTAB_ASSIGNMENT": "tiny"}, "config", "GRADSTAB_URL"),
    "bad url": (configured("gradstab.example.edu"), "config", "not an http"),
    "ftp url": (configured("ftp://gradstab.example.edu"), "config", "not an http"),
    "no assignment": ({"GRADSTAB_URL": "http://127.0.0.1:9"}, "config", "GRADSTAB_ASSIGNMENT"),
    "bad deadline": (configured("http://127.0.0.1:9") | {"GRADSTAB_DEADLINE": "soon"}, "config", "deadline"),
}


@pytest.mark.parametrize("case", list(GRADESCOPE_SETUP))
def test_gradescope_bad_setup(case: str, tmp_path: Path) -> None:
    env, reason, words = GRADESCOPE_SETUP[case]
    out = gradescope(tmp_path, env)
    assert out["extra_data"]["reason"] == reason and words in out["output"]
    assert "not a problem with your submission" in out["output"]


def test_gradescope_unreadable_config_json(tmp_path: Path) -> None:
    out = gradescope(tmp_path, {}, {"spec.json": json.dumps(SPEC).encode(), "config.json": b"{url: nope"})
    assert out["extra_data"]["reason"] == "config" and "config.json" in out["output"]


SERVICE_ANSWERS = {  # stub path → (reason, words)
    "key-refused": ("config", "API key"),
    "no-assignment": ("config", "no assignment"),
    "server-error": ("server_error", "failed"),
    "not-json": ("server_error", "not JSON"),
    "no-score": ("server_error", "without a score"),
}


@pytest.mark.parametrize("answer", list(SERVICE_ANSWERS))
def test_gradescope_service_answers(answer: str, stub: str, tmp_path: Path) -> None:
    reason, words = SERVICE_ANSWERS[answer]
    out = gradescope(tmp_path, configured(f"{stub}/{answer}"))
    assert out["extra_data"]["reason"] == reason and words in out["output"], out


SUBMISSIONS = {  # files → words
    "nothing": ({}, "Upload spec.json"),
    "spec not JSON": ({"spec.json": b'{"layers": [4, 4'}, "not valid JSON"),
    "spec a list": ({"spec.json": b"[4, 4, 4]"}, "JSON object"),
    "spec binary": ({"spec.json": b"\xff\xfe\x00\x01"}, "not a text file"),
    "answers a string": ({"spec.json": json.dumps(SPEC).encode(), "answers.json": b'"0.3"'}, "JSON object"),
    "combined without spec": ({"submission.json": b'{"answers": {}}'}, '"spec"'),
    "combined a list": ({"submission.json": b"[]"}, "JSON object"),
    "combined answers a list": (
        {"submission.json": json.dumps({"spec": SPEC, "answers": [1]}).encode()},
        '"answers"',
    ),
}


@pytest.mark.parametrize("case", list(SUBMISSIONS))
def test_gradescope_malformed_submission(case: str, stub: str, tmp_path: Path) -> None:
    files, words = SUBMISSIONS[case]
    out = gradescope(tmp_path, configured(f"{stub}/server-error"), files)
    assert out["extra_data"]["reason"] == "submission" and words in out["output"], out


def load(script: Path, name: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(script))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_gradescope_unforeseen_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGRADER_RESULTS", str(tmp_path / "results.json"))
    module = load(GRADESCOPE, "run_autograder_under_test")

    def broken(started: float) -> dict:
        raise TypeError("something nobody foresaw")

    monkeypatch.setattr(module, "grade", broken)
    assert module.main() == 0
    out = json.loads((tmp_path / "results.json").read_text())
    jsonschema.validate(out, GRADESCOPE_RESULTS)
    assert out["score"] == 0 and out["extra_data"]["reason"] == "internal"
    assert "something nobody foresaw" in out["output"]


# ---- PrairieLearn ----------------------------------------------------------------------------------


def prairielearn(tmp_path: Path, env: dict[str, str], files: dict[str, bytes] | None = None) -> dict:
    student = tmp_path / "grade" / "student"
    student.mkdir(parents=True)
    for name, data in ({"spec.json": json.dumps(SPEC).encode()} if files is None else files).items():
        (student / name).write_bytes(data)
    done = run(PRAIRIELEARN, {"GRADE_ROOT": str(tmp_path / "grade"), "GRADSTAB_DEADLINE": "20"} | env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    out = json.loads((tmp_path / "grade" / "results" / "results.json").read_text())
    jsonschema.validate(out, PRAIRIELEARN_RESULTS)
    assert out["gradable"] is False and out.get("score", 0) == 0
    text = " ".join([out.get("message", ""), *out.get("format_errors", [])])
    assert text.strip() and "Traceback" not in text
    out["text"] = text
    return out


PL_SETUP = {
    "no url": ({"GRADSTAB_ASSIGNMENT": "tiny"}, "GRADSTAB_URL"),
    "bad url": (configured("gradstab.example.edu"), "not an http"),
    "no assignment": ({"GRADSTAB_URL": "http://127.0.0.1:9"}, "GRADSTAB_ASSIGNMENT"),
    "bad deadline": (configured("http://127.0.0.1:9") | {"GRADSTAB_DEADLINE": "-1"}, "GRADSTAB_DEADLINE"),
}


@pytest.mark.parametrize("case", list(PL_SETUP))
def test_prairielearn_bad_setup(case: str, tmp_path: Path) -> None:
    env, words = PL_SETUP[case]
    out = prairielearn(tmp_path, env)
    assert words in out["text"] and "not a problem with your submission" in out["text"]


@pytest.mark.parametrize("answer", list(SERVICE_ANSWERS))
def test_prairielearn_service_answers(answer: str, stub: str, tmp_path: Path) -> None:
    _reason, words = SERVICE_ANSWERS[answer]
    out = prairielearn(tmp_path, configured(f"{stub}/{answer}"))
    assert words.lower() in out["text"].lower(), out


PL_SUBMISSIONS = {
    "nothing": ({}, "Submit spec.json"),
    "spec not JSON": ({"spec.json": b'{"layers": [4, 4'}, "not valid JSON"),
    "spec a list": ({"spec.json": b"[4, 4, 4]"}, "JSON object"),
    "spec binary": ({"spec.json": b"\xff\xfe\x00\x01"}, "not a text file"),
    "answers a list": ({"spec.json": json.dumps(SPEC).encode(), "answers.json": b"[0.3]"}, "JSON object"),
}


@pytest.mark.parametrize("case", list(PL_SUBMISSIONS))
def test_prairielearn_malformed_submission(case: str, stub: str, tmp_path: Path) -> None:
    files, words = PL_SUBMISSIONS[case]
    out = prairielearn(tmp_path, configured(f"{stub}/server-error"), files)
    assert out["format_errors"] and words in out["text"], out


def test_prairielearn_unforeseen_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADE_ROOT", str(tmp_path))
    module = load(PRAIRIELEARN, "prairielearn_grade_under_test")

    def broken(started: float) -> dict:
        raise TypeError("something nobody foresaw")

    monkeypatch.setattr(module, "grade", broken)
    assert module.main() == 0
    out = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(out, PRAIRIELEARN_RESULTS)
    assert out["gradable"] is False and "something nobody foresaw" in out["message"]
