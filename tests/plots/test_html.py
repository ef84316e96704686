"""The report page: self-contained, escaped, with summary, verdict, plots, causes, fixes and table."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

from service.plots import report_page


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collect()
    parser.feed(page)
    return parser.tags


def test_page_sections(float16_exploding: dict[str, Any]) -> None:
    page = report_page(float16_exploding)
    ids = {attrs.get("id") for _, attrs in _tags(page)}
    assert {"summary", "verdict", "plots", "causes", "fixes", "layers"} <= ids
    assert page.count("<svg") == 3  # gradients, σ', before/after
    assert page.count("<tr>") == float16_exploding["depth"] + 1
    assert "exploding" in page


def test_nothing_from_another_host(float16_exploding: dict[str, Any]) -> None:
    tags = _tags(report_page(float16_exploding))
    for tag, attrs in tags:
        for name in ("src", "href", "xlink:href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
        assert tag not in ("script", "link", "iframe", "img", "object")


def test_user_text_is_escaped(sigmoid_vanishing: dict[str, Any]) -> None:
    report = copy.deepcopy(sigmoid_vanishing)
    evil = '<script>alert("x")</script>'
    report["diagnosis"]["summary"] = evil
    report["diagnosis"]["causes"] = [{"code": evil, "message": evil, "layers": [], "evidence": {}}]
    report["diagnosis"]["recommendations"] = [
        {"code": "x", "change": {"activation": evil}, "rationale": evil, "verified": None, "fixes": None}
    ]
    report["layers"][0]["activation"]["name"] = evil
    page = report_page(report)
    assert "<script" not in page
    assert "&lt;script&gt;" in page


def test_unique_ids_across_the_inline_svgs(float16_exploding: dict[str, Any]) -> None:
    ids = re.findall(r'\bid="([^"]+)"', report_page(float16_exploding))
    # matplotlib's own element ids (line2d_1, ...) repeat per figure; the ones that are referenced must not clash.
    referenced = set(re.findall(r'(?:href="#|url\(#)([^")]+)', report_page(float16_exploding)))
    assert all(ids.count(i) == 1 for i in referenced)


def test_an_architecture_report_shows_its_blocks_and_normalisation() -> None:
    from schemas import ModelSpecSchema, dump_report
    from service.engine import analyze
    from service.plots import gradient_figure, report_page

    spec = ModelSpecSchema().load(
        {
            "layers": {"depth": 8, "width": 8},
            "verify_recommendations": False,
            "architecture": {"residual": {"every": 2}, "normalization": {"kind": "rmsnorm", "position": "pre"}},
        }
    )
    report = dump_report(analyze(spec))
    page = report_page(report)
    assert '<section id="architecture">' in page and "rmsnorm (pre" in page
    keys = {s.key: s for s in gradient_figure(report).series}
    assert keys["block-outputs"].x == (2, 4, 6, 8) and keys["normalized"].x == (1, 3, 5, 7)
    assert keys["theory"].x == (2, 4, 6, 8)  # the prediction is per block
