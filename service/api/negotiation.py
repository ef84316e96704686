"""Content negotiation for a report: JSON (the default), or its pictures (HTML page, SVG, PNG).

The representations are chosen from `Accept` with werkzeug's q-value matching; a missing
header or */* gets JSON, so existing clients see no change; an Accept none of them satisfies is
406 problem+json naming what is offered. Pictures are drawn from the report's wire form, so a
cached report is drawn without rerunning the engine; service.plots loads matplotlib only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, request

from .errors import ProblemError

JSON = "application/json"
HTML = "text/html"
SVG = "image/svg+xml"
PNG = "image/png"
OFFERED = (JSON, HTML, SVG, PNG)  # order breaks ties: */* and application/* get JSON

_TEXT = {"type": "string"}
OPENAPI_DOC: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The report: JSON by default; with Accept text/html one self-contained page, "
            "image/svg+xml or image/png the main plot (gradient norms per layer).",
            "content": {  # a "content" here replaces flask-smorest's, so JSON is restated
                JSON: {"schema": {"$ref": "#/components/schemas/Report"}},
                HTML: {"schema": _TEXT},
                SVG: {"schema": _TEXT},
                PNG: {"schema": {**_TEXT, "format": "binary"}},
            },
        }
    }
}


def negotiate() -> str:
    """The media type to answer with, or a 406 problem."""
    if not request.headers.get("Accept", "").strip():
        return JSON
    best = request.accept_mimetypes.best_match(OFFERED)
    if best is None:
        offered = ", ".join(OFFERED)
        raise ProblemError(
            406,
            "not_acceptable",
            f"No representation of a report matches Accept: {request.headers['Accept']}. Offered: {offered}.",
            [{"field": "Accept", "message": f"Must accept one of: {offered}."}],
            title="Not Acceptable",
        )
    return best


def figure_refused(figure: str, detail: str) -> ProblemError:
    """422 naming the `figure` query argument."""
    return ProblemError(422, "invalid_figure", detail, [{"field": "figure", "message": detail}])


def picture_response(report: Mapping[str, Any], media: str, figure: str = "gradients") -> Response:
    """The page, or one plot (`figure`, schemas.figures: the main plot by default) of a wire-form report."""
    if media == HTML:
        from service.plots.html import report_page

        body: str | bytes = report_page(report)
        mimetype = "text/html"
    else:
        from service.plots.files import FigureUnavailable, plot_bytes

        try:
            body = plot_bytes(report, "svg" if media == SVG else "png", figure)
        except FigureUnavailable as exc:
            raise figure_refused(figure, str(exc)) from exc
        mimetype = media
    response = current_app.response_class(body, mimetype=mimetype)
    response.vary.add("Accept")
    return response


def sweep_picture_response(result: Mapping[str, Any], media: str) -> Response:
    """A sweep's phase diagrams: the HTML page (verdict and log10 growth, χ = 1, the points), or the verdict
    heatmap as SVG/PNG. From the points done so far; 409 while there are none."""
    if not result.get("points"):
        raise ProblemError(409, "no_points_yet", "The sweep has no finished point yet; ask again later.")
    if media == HTML:
        from service.plots.html import sweep_page

        body: str | bytes = sweep_page(result)
        mimetype = "text/html"
    else:
        from service.plots.phase import phase_figures
        from service.plots.render import render_png, render_svg

        figure = phase_figures(result, "verdict")[0]
        body = render_svg(figure) if media == SVG else render_png(figure)
        mimetype = media
    response = current_app.response_class(body, mimetype=mimetype)
    response.vary.add("Accept")
    return response
