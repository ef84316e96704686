"""The report page in a real browser: headless Chromium (Debian's `chromium`, as CI installs it)
renders it offline, takes a screenshot (kept in build/test-output/plots/ for a person to look
at), and the rendered DOM has the summary and the plots and no URL of another host."""

from __future__ import annotations

import html
import json
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


# Measures, in the browser's own fonts, what a person would find cut off: a table wider than its box (its
# last columns behind a scrollbar), a page wider than the window, an SVG text outside its picture.
CLIPPING_PROBE = """<script>
const problems = [];
for (const box of document.querySelectorAll('.scroll')) {
  if (box.scrollWidth > box.clientWidth + 1) problems.push(`table ${box.scrollWidth}px in a ${box.clientWidth}px box`);
}
if (document.documentElement.scrollWidth > window.innerWidth + 1) problems.push('page wider than the window');
for (const svg of document.querySelectorAll('svg')) {
  const frame = svg.getBoundingClientRect();
  for (const text of svg.querySelectorAll('text')) {
    const r = text.getBoundingClientRect();
    if (!text.textContent.trim() || r.width === 0) continue;
    if (r.left < frame.left - 0.5 || r.right > frame.right + 0.5 || r.top < frame.top - 0.5 ||
        r.bottom > frame.bottom + 0.5) problems.push(`"${text.textContent.trim()}" cut at the picture's edge`);
  }
}
document.body.setAttribute('data-clipping', JSON.stringify(problems));
</script></body>"""


def _pages(float16_exploding: dict[str, Any], sigmoid_vanishing: dict[str, Any]) -> dict[str, str]:
    from service.plots import sweep_page

    from .test_phase import _numeric_sweep, _sweep

    return {
        "report-float16": report_page(float16_exploding),
        "report-float32": report_page(sigmoid_vanishing),
        "sweep-categorical": sweep_page(_sweep()),
        "sweep-numeric": sweep_page(_numeric_sweep()),
    }


@pytest.mark.parametrize("width", [1280, 800])
def test_nothing_is_cut_off_at_common_widths(
    width: int,
    float16_exploding: dict[str, Any],
    sigmoid_vanishing: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    found = {}
    for name, page in _pages(float16_exploding, sigmoid_vanishing).items():
        probe = OUTPUT / f"{name}-{width}.html"
        probe.write_text(page.replace("</body>", CLIPPING_PROBE), encoding="utf-8")
        _chromium(
            f"--screenshot={OUTPUT / f'{name}-{width}.png'}",
            f"--window-size={width},2400",
            probe.as_uri(),
            profile=profile,
        )
        dom = _chromium(f"--window-size={width},2400", "--dump-dom", probe.as_uri(), profile=profile).stdout
        m = re.search(r"data-clipping=\"([^\"]*)\"", dom)
        assert m, f"{name}: the probe did not run"
        problems = json.loads(html.unescape(m.group(1)))
        if problems:
            found[name] = problems
    assert not found, found
