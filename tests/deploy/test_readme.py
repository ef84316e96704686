"""The Deployment section documents every environment variable the code reads.

Why: the issue asks for every variable with its default; a variable added to the code
without a line in the README is invisible to an operator. The section is README.md's
"## Deployment".
"""

from __future__ import annotations

import re

from schemas.limits import Limits
from tests.deploy.support import REPO

_ENV_READ = re.compile(
    r"(?:\b_(?:get|int|bool|float|\w*setting)|os\.getenv|os\.environ\.get|os\.environ\.setdefault)"
    r"\(\s*(?:\w+,\s*)*[\"']([A-Z][A-Z0-9_]+)[\"']"
    r"|os\.environ\[[\"']([A-Z][A-Z0-9_]+)[\"']\]"
    r"|[\"']([A-Z][A-Z0-9_]+)[\"']\s+(?:not\s+)?in\s+(?:os\.)?environ"
    r"|[\"'](GRADSTAB_[A-Z0-9_]+)[\"']"
)
_FLASK_CONFIG_KEY = re.compile(r"config(?:\.pop|\.get|\.setdefault)?[\[(]\s*[\"']([A-Z0-9_]+)[\"']")


def _deployment_section() -> str:
    m = re.search(r"^## Deployment\n(.*?)(?=^## |\Z)", (REPO / "README.md").read_text(), re.M | re.S)
    assert m, "README.md has no '## Deployment' section"
    return m.group(1)


def _variables_read_by_code() -> set[str]:
    sources = [*REPO.glob("service/**/*.py"), *REPO.glob("schemas/**/*.py"), REPO / "gunicorn.conf.py"]
    text = "\n".join(p.read_text() for p in sources if p.exists())
    found = {next(g for g in m.groups() if g) for m in _ENV_READ.finditer(text)}
    found -= set(_FLASK_CONFIG_KEY.findall(text))
    found.discard("GRADSTAB_")  # the Limits prefix itself
    return found | {Limits.env_name(name) for name in Limits().as_dict()}


def test_every_variable_read_by_the_code_is_documented() -> None:
    section = _deployment_section()
    missing = sorted(v for v in _variables_read_by_code() if f"`{v}`" not in section)
    assert not missing, f"not in the Deployment section's table: {missing}"


def test_documented_limit_defaults_match_the_code() -> None:
    section = _deployment_section()
    for name, value in Limits().as_dict().items():
        row = re.search(rf"^\| `{Limits.env_name(name)}` \| `([^`]+)`", section, re.M)
        assert row, Limits.env_name(name)
        assert float(row[1]) == float(value), f"{Limits.env_name(name)}: {row[1]} != {value}"
