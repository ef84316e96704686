"""JSON Schemas of what Gradescope and PrairieLearn document for an autograder's results file.

Written from the platforms' documentation (not from our output), so a test against them catches
a field we misname or mistype:
- Gradescope: https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format
  (source: github.com/gradescope/autograder_samples docs/specs.md)
- PrairieLearn: https://prairielearn.readthedocs.io/en/latest/externalGrading/#grading-results
  (source: github.com/PrairieLearn/PrairieLearn docs/externalGrading.md)
"""

from __future__ import annotations

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}

GRADESCOPE_RESULTS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": FORMAT,
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
        "leaderboard": {"type": "array"},
    },
    # "score: optional, but required if not on each test case"; "tests: required if no top-level score".
    "anyOf": [{"required": ["score"]}, {"required": ["tests"]}],
    "additionalProperties": False,
}

_PL_TEST = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "points": {"type": "number"},
        "max_points": {"type": "number"},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "images": {"type": "array"},
    },
    "required": ["name"],
}

PRAIRIELEARN_RESULTS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "gradable": {"type": "boolean"},
        # "score ... should be a floating point number in the range [0.0, 1.0]"
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "points": {"type": "number"},
        "max_points": {"type": "number"},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "format_errors": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "images": {"type": "array"},
        "tests": {"type": "array", "items": _PL_TEST},
    },
    # "If the submission is gradable, the result only has one mandatory field: score".
    "if": {"properties": {"gradable": {"const": False}}, "required": ["gradable"]},
    "then": {},
    "else": {"required": ["score"]},
}
