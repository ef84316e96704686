"""`gradstab analyze SPEC --html FILE --plot FILE`: the same JSON on stdout, and the pictures in files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main

SPEC = {"layers": [4, 8, 8, 2], "activation": "tanh", "batch_size": 4, "dtype": "float16"}


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    return path


@pytest.mark.parametrize("plot_name", ["out.svg", "out.png"])
def test_html_and_plot_files(spec_file: Path, tmp_path: Path, plot_name: str, capsys: pytest.CaptureFixture) -> None:
    html, plot = tmp_path / "report.html", tmp_path / plot_name
    assert main(["analyze", str(spec_file), "--html", str(html), "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["depth"] == 3
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and report["diagnosis"]["verdict"] in page
    data = plot.read_bytes()
    assert data.startswith(b"<?xml") if plot_name.endswith(".svg") else data.startswith(b"\x89PNG")


def test_plot_needs_a_known_suffix(spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(spec_file), "--plot", str(tmp_path / "out.jpg")])
    assert exc.value.code == 2
    assert ".svg or .png" in capsys.readouterr().err
