"""matplotlib is loaded only by a plot: not by the JSON path, the app, or a gunicorn worker's start."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.api.conftest import TINY_SPEC

_NO_MATPLOTLIB = """
import sys
assert "matplotlib" not in sys.modules, "imported at start"
{body}
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")
print("LOADED" if loaded else "CLEAN")
"""


def _run(body: str) -> str:
    code = _NO_MATPLOTLIB.format(body=textwrap.dedent(body))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_json_path_and_worker_start_do_not_import_matplotlib() -> None:
    body = f"""
    import service.plots, service.gunicorn_conf  # the master's config module, and the plots package itself
    from service import wsgi
    from service.api.health import warm_up
    app = wsgi.app  # what a worker builds
    assert warm_up(app)  # post_worker_init
    with app.test_client() as client:
        r = client.post("/v1/analyses", json={TINY_SPEC!r})
        assert r.status_code == 200 and r.is_json, r.status_code
    """
    assert _run(body) == "CLEAN"


def test_a_plot_does_import_it() -> None:
    body = """
    from service.plots import render_svg
    from service.plots.model import LineFigure, Series
    series = (Series("s", "s", (1, 2), (0.1, 0.2), "#000000"),)
    render_svg(LineFigure("k", "t", "d", "x", "y", "linear", (0.0, 1.0), series))
    """
    assert _run(body) == "LOADED"
