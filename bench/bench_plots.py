"""Plot benchmark: the cost of a picture as a fraction of the analysis it draws, same run.

The issue's budget: the main plot of a d=100, n=256 analysis adds at most 20 % to the analysis
and at most 150 ms. Both are timed here, best of N after one warm-up each (the first plot also
pays matplotlib's one-off import, printed apart: a worker pays it once, on its first plot).
Prints figures, never pass/fail.

    python bench/bench_plots.py [--repeat N] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from bench_engine import best_of

from schemas import ModelSpecSchema
from schemas.report import dump_report
from service.engine import analyze

SPEC: dict[str, Any] = {
    "layers": {"depth": 100, "width": 256},
    "activation": "tanh",
    "init": "xavier_normal",
    "dtype": "float32",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = ModelSpecSchema().load(SPEC)
    report: dict[str, Any] = {}

    def analysis() -> None:
        report.clear()
        report.update(dump_report(analyze(spec)))

    t_analysis = best_of(analysis, max(2, args.repeat // 2))

    assert "matplotlib" not in sys.modules
    t0 = time.perf_counter()
    from service.plots import gradient_figure, render_png, render_svg, report_page
    from service.plots.render import _mpl

    _mpl()
    t_import = time.perf_counter() - t0

    rows = [
        ("main plot, SVG (figure data + render)", best_of(lambda: render_svg(gradient_figure(report)), args.repeat)),
        ("main plot, PNG 100 dpi", best_of(lambda: render_png(gradient_figure(report)), args.repeat)),
        ("HTML page (3 plots + table)", best_of(lambda: report_page(report), max(2, args.repeat // 2))),
    ]
    print(f"spec: {SPEC}  torch threads: {torch.get_num_threads()}  verification: on (default)")
    print(f"analysis (engine + dump), best of {max(2, args.repeat // 2)}: {t_analysis * 1e3:8.1f} ms")
    print(f"matplotlib import, once per process:        {t_import * 1e3:8.1f} ms")
    for name, t in rows:
        print(f"{name:44s} {t * 1e3:8.1f} ms  = {100 * t / t_analysis:5.1f} % of the analysis")
    main_svg = rows[0][1]
    print(
        f"target (main plot ≤ 20 % of the analysis and ≤ 150 ms): {100 * main_svg / t_analysis:.1f} %, "
        f"{main_svg * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
