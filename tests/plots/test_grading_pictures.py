"""The plot inside autograder results: Gradescope's HTML output and PrairieLearn's `images`."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import jsonschema
import pytest

from schemas.grading import RubricSchema
from service.application.cache import CachedReport
from service.application.grading import GradingService
from service.grading.formats import student_view, to_gradescope, to_prairielearn
from service.grading.model import GradeRequest, Submission
from service.plots.picture import report_picture
from tests.api.conftest import SMALL_LIMITS
from tests.grading.platform_schemas import GRADESCOPE_RESULTS, PRAIRIELEARN_RESULTS

from .conftest import report_for

HIDDEN = "secret-bound-check"
CHECKS = [
    {"kind": "verdict", "name": "verdict", "points": 1, "expected": "exploding"},
    {"kind": "value", "name": HIDDEN, "points": 2, "pointer": "/depth", "expected": 12345, "visibility": "hidden"},
]
SPEC = {"layers": {"depth": 12, "width": 4}, "activation": "identity", "weight_scale": 1.8, "dtype": "float16"}
# PrairieLearn documents each image as {"label": optional, "url": "data:[mimetype];base64,[contents]"}.
PL_IMAGE = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "url": {"type": "string", "pattern": "^data:image/png;base64,"}},
    "required": ["url"],
}


class _FixedReports:
    """A report source that always answers with the same report (a cache miss)."""

    def __init__(self, report: dict[str, Any]) -> None:
        self._report = report

    def report(self, spec: Any, view: Any = None) -> CachedReport:
        return CachedReport(self._report, False)


def _service(report: dict[str, Any]) -> GradingService:
    return GradingService(reports=_FixedReports(report), limits=SMALL_LIMITS)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def graded() -> dict[str, Any]:
    report = report_for(**SPEC, batch_size=4)

    out = {}
    for fmt in ("gradescope", "prairielearn"):
        request = GradeRequest(Submission(SPEC), RubricSchema().load({"checks": CHECKS}), fmt)
        out[fmt] = _service(report).grade(request, for_student=True).body
    out["report"] = report
    return out


def _png(url: str) -> bytes:
    return base64.b64decode(url.split(",", 1)[1], validate=True)


def test_prairielearn_images(graded: dict[str, Any]) -> None:
    body = graded["prairielearn"]
    jsonschema.validate(body, PRAIRIELEARN_RESULTS)
    (image,) = body["images"]
    jsonschema.validate(image, PL_IMAGE)
    assert _png(image["url"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert len(json.dumps(body)) < 1_000_000  # PrairieLearn's limit on results.json


def test_gradescope_html_output(graded: dict[str, Any]) -> None:
    body = graded["gradescope"]
    jsonschema.validate(body, GRADESCOPE_RESULTS)
    assert body["output_format"] == "html"
    assert body["output"].startswith("<pre>") and '<img src="data:image/png;base64,' in body["output"]
    url = body["output"].split('src="', 1)[1].split('"', 1)[0]
    assert _png(url).startswith(b"\x89PNG")


def test_hidden_checks_stay_hidden(graded: dict[str, Any]) -> None:
    for fmt in ("gradescope", "prairielearn"):
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", json.dumps(graded[fmt]))
        assert HIDDEN not in text and "12345" not in text, fmt


def test_text_in_the_html_output_is_escaped(graded: dict[str, Any]) -> None:
    from service.grading.model import GradeResult

    result = student_view(GradeResult(checks=[], summary="<script>x</script> & <b>"))
    picture = report_picture(graded["report"])
    out = to_gradescope(result, 0.1, [picture])["output"]
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert to_gradescope(result, 0.1)["output_format"] == "text"  # without a picture: unchanged
    assert "images" not in to_prairielearn(result)


def test_refused_spec_has_no_picture() -> None:
    request = GradeRequest(Submission({"layers": "nope"}), RubricSchema().load({"checks": CHECKS}), "prairielearn")
    body = _service({}).grade(request).body
    assert body["gradable"] is False and "images" not in body


TRAINED = {"layers": [4, 8, 8, 2], "batch_size": 4, "training": {"steps": 4, "examples": 16}}
TRAINING_CHECK = {
    "kind": "value",
    "name": "diverged",
    "points": 1,
    "pointer": "/training/summary/diverged",
    "expected": False,
}


@pytest.mark.parametrize(
    ("checks", "labels"),
    [
        (CHECKS, 1),  # a rubric that reads no training: the main plot only
        ([*CHECKS, TRAINING_CHECK], 3),  # one that does: the training heat map and loss curve too
    ],
)
def test_a_rubric_on_training_carries_the_training_pictures(checks: list[dict[str, Any]], labels: int) -> None:
    from service.plots.training_figures import training_gradient_heatmap, training_loss_figure

    report = report_for(**TRAINED)
    request = GradeRequest(Submission(TRAINED), RubricSchema().load({"checks": checks}), "prairielearn")
    body = _service(report).grade(request).body
    jsonschema.validate(body, PRAIRIELEARN_RESULTS)
    images = body["images"]
    assert len(images) == labels and len(json.dumps(body)) < 1_000_000
    expected = [report_picture(report).label]
    if labels == 3:
        expected += [
            training_gradient_heatmap(report["training"]).title,
            training_loss_figure(report["training"]).title,
        ]
    assert [i["label"] for i in images] == expected
    gradescope = _service(report).grade(GradeRequest(Submission(TRAINED), request.rubric, "gradescope")).body
    assert gradescope["output"].count("<img ") == labels
