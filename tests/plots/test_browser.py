"""The report page in a real browser: headless Chromium (Debian's `chromium`, as CI installs it)
renders it offline, takes a screenshot (kept in build/test-output/plots/ for a person to look
at), and the rendered DOM has the summary and the plots and no URL of another host."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from service.plots import report_page

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "build" / "test-output" / "plots"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Any host name resolves to nothing: a request that left the page would fail, and show in the DOM check below.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-first-run",
    "--disable-extensions",
]

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium (CI: apt-get install chromium)")


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(BROWSER), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def rendered(float16_exploding: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page = OUTPUT / "report.html"
    page.write_text(report_page(float16_exploding), encoding="utf-8")
    shot = OUTPUT / "report.png"
    shot.unlink(missing_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    _chromium(f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri(), profile=profile)
    dom = _chromium("--dump-dom", page.as_uri(), profile=profile).stdout
    return dom, shot


def test_screenshot_is_not_blank(rendered: tuple[str, Path]) -> None:
    from PIL import Image  # pillow comes with matplotlib

    _, shot = rendered
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        non_white = sum(n for n, c in colours if c != (255, 255, 255))
        assert non_white > 0.02 * rgb.width * rgb.height
        assert len(colours) > 50  # text, lines, bands: not a flat fill


def test_rendered_dom_has_summary_and_plots_and_no_other_host(rendered: tuple[str, Path]) -> None:
    dom, _ = rendered
    assert re.search(r'id="summary"[^>]*>[^<]*\S', dom)
    assert dom.count("<svg") == 3 and 'role="img"' in dom
    urls = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"|url\(\s*[\'"]?([^)\'"]*)', dom)
    for url in (u for pair in urls for u in pair if u):
        assert url.startswith("#"), url
