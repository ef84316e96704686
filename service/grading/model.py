"""The grading domain's values: rubrics and their checks, submissions, results (plain dataclasses).

`schemas.grading` loads the wire format into these; `service.grading.grader` evaluates them;
`service.grading.formats` writes results for the service's JSON, Gradescope and PrairieLearn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Gradescope's visibility vocabulary (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
VISIBILITIES: tuple[str, ...] = ("visible", "hidden", "after_due_date", "after_published")
VERDICTS: tuple[str, ...] = ("exploding", "vanishing", "stable")
ANSWER_SCALES: tuple[str, ...] = ("linear", "log10")
# Tolerances where a value or answer check gives none (math.isclose's, with abs_tol 0).
ABS_TOL = 0.0
REL_TOL = 1e-9
DEFAULT_FORMAT = "json"  # service.grading.formats.FORMATS[0]

Scalar = float | int | str | bool | None


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a report value (or a student's answer) must be: equal within tolerance, or in a range.

    Numbers pass when |actual − expected| ≤ max(abs_tol, rel_tol·|expected|) (math.isclose) and
    lie within [min, max] where those are given; strings and booleans must be equal.
    """

    has_expected: bool = False
    expected: Scalar = None
    abs_tol: float = ABS_TOL
    rel_tol: float = REL_TOL
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, kw_only=True)
class Check:
    """What every check has. `required`: when it fails, the other checks earn no points."""

    name: str
    points: float = 1.0
    visibility: str = "visible"
    feedback: str | None = None  # template shown when the check fails
    feedback_pass: str | None = None  # template shown when it passes
    required: bool = False

    kind = "check"


@dataclass(frozen=True, kw_only=True)
class VerdictCheck(Check):
    """The analysis' verdict is one of `expected`."""

    expected: tuple[str, ...]
    kind = "verdict"


@dataclass(frozen=True, kw_only=True)
class ValueCheck(Check):
    """The report's value at `pointer` meets `target`."""

    pointer: str
    target: Target
    kind = "value"


@dataclass(frozen=True, kw_only=True)
class AnswerCheck(Check):
    """The student's answer `answer` matches the report's value at `pointer`.

    scale=log10: the student gives a plain magnitude (say 4e-31) and the report value is its
    log10 (as every `log10_*` field is); they are compared in log10, so tolerances are in decades.
    """

    answer: str
    pointer: str
    abs_tol: float = ABS_TOL
    rel_tol: float = REL_TOL
    scale: str = "linear"
    kind = "answer"


@dataclass(frozen=True, kw_only=True)
class ConstraintCheck(Check):
    """Constraints on the submitted spec itself (not on its analysis).

    equals: spec fields (wire names, plus depth/width/input_dim) that must have these values;
    may_change: the only wire fields that may differ from `starter` (None: no such rule).
    In an assignment, a missing starter or may_change comes from the assignment.
    """

    equals: dict[str, Any] = field(default_factory=dict)
    may_change: tuple[str, ...] | None = None
    starter: dict[str, Any] | None = None
    required: bool = True
    kind = "constraint"


@dataclass(frozen=True)
class Rubric:
    checks: tuple[Check, ...]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)


def reads_training(rubric: Rubric) -> bool:
    """Whether a check reads the report's training section: the LMS result then carries the training pictures."""
    return any(getattr(c, "pointer", "").startswith("/training") for c in rubric.checks)


@dataclass(frozen=True)
class Submission:
    spec: dict[str, Any]  # the wire format; validated against the server's limits when graded
    answers: dict[str, float | int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class GradeRequest:
    submission: Submission
    rubric: Rubric
    format: str = DEFAULT_FORMAT


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    passed: bool
    points: float
    max_points: float
    visibility: str
    message: str  # the check's own outcome; a gate is worded by the reader's format (formats.py)
    # The failed required check that took this check's points although it passed on its own, and
    # that check's visibility: what a reader may learn of it depends on both visibilities.
    gated_by: str | None = None
    gate_visibility: str = "visible"


@dataclass
class GradeResult:
    """Per-check results and the total; `gradable` is false when the spec itself was invalid."""

    checks: list[CheckResult]
    gradable: bool = True
    errors: list[str] = field(default_factory=list)
    summary: str = ""  # the analysis in the lecture's terms
    report_id: str | None = None
    engine_version: str | None = None
    verdict: str | None = None
    cache_hit: bool | None = None
    hidden_checks: int = 0  # non-visible checks a student view shows only as "Hidden check k": passed/failed
    hidden_points: float = 0.0
    audience: str = "instructor"  # "student" once formats.student_view has made it safe for a student

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_points for c in self.checks)

    @property
    def fraction(self) -> float:
        """Score in [0, 1]; a rubric worth 0 points scores 1 when every check passes."""
        if self.max_score > 0:
            return min(1.0, max(0.0, self.score / self.max_score))
        return 1.0 if self.gradable and all(c.passed for c in self.checks) else 0.0


@dataclass(frozen=True)
class Assignment:
    """An assignment kept on the server: the public part (id .. answers) and the hidden rubric."""

    id: str
    title: str
    instructions: str
    starter: dict[str, Any]  # as the instructor wrote it (shown to students)
    starter_view: dict[str, Any]  # normalised, for constraint checks
    may_change: tuple[str, ...]
    answers: dict[str, str]
    rubric: Rubric
    source: str = field(default="", compare=False)
