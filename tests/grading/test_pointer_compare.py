"""JSON pointers (RFC 6901) and tolerance/range comparison."""

from __future__ import annotations

import pytest

from service.grading.compare import meets
from service.grading.model import Target
from service.grading.pointer import PointerError, resolve

DOC = {"a": {"b/c": [10, {"~k": 3}]}, "n": None, "": 7}


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("", DOC),
        ("/a/b~1c/0", 10),
        ("/a/b~1c/1/~0k", 3),
        ("/n", None),
        ("/", 7),
    ],
)
def test_resolve(pointer: str, value: object) -> None:
    assert resolve(DOC, pointer) == value


@pytest.mark.parametrize(
    ("pointer", "words"),
    [
        ("a", "starts with '/'"),
        ("/x", "no field 'x'"),
        ("/a/b~1c/2", "past the end"),
        ("/a/b~1c/01", "not an array index"),
        ("/a/b~1c/0/x", "is a int"),
        ("/a~2", "'~' must be"),
    ],
)
def test_resolve_errors_say_where(pointer: str, words: str) -> None:
    with pytest.raises(PointerError, match=words):
        resolve(DOC, pointer)


def test_tolerances_and_ranges() -> None:
    assert meets(0.505, Target(has_expected=True, expected=0.5, abs_tol=0.01))[0]
    assert not meets(0.52, Target(has_expected=True, expected=0.5, abs_tol=0.01))[0]
    assert meets(105, Target(has_expected=True, expected=100, rel_tol=0.1))[0]
    ok, why = meets(-30.4, Target(min=-2, max=2))
    assert not ok and "between -2 and 2" in why
    assert meets(1.5, Target(min=1))[0]
    assert not meets(None, Target(min=1))[0]
    assert "null" in meets(None, Target(max=1))[1]


def test_scalars_compare_by_type() -> None:
    assert meets(False, Target(has_expected=True, expected=False))[0]
    assert not meets(0, Target(has_expected=True, expected=False))[0]
    assert meets("stable", Target(has_expected=True, expected="stable"))[0]
    assert not meets("a", Target(min=0))[0]
