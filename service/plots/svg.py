"""SVG post-processing: alt text as <title>/<desc> (what screen readers announce), and the bare
<svg> element for inlining in HTML."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def add_alt_text(svg: str, title: str, description: str, ident: str) -> str:
    """Give the root <svg> role="img", aria-labelledby, and <title>/<desc> as its first children.

    matplotlib writes the title only into RDF metadata, which assistive technology ignores.
    """
    match = _SVG_OPEN.search(svg)
    if match is None:
        raise ValueError("not an SVG document")
    open_tag = match.group(0)
    attrs = f' role="img" aria-labelledby="{ident}-title {ident}-desc"'
    new_open = open_tag[:-1] + attrs + ">"
    alt = f'\n <title id="{ident}-title">{escape(title)}</title>\n <desc id="{ident}-desc">{escape(description)}</desc>'
    return svg[: match.start()] + new_open + alt + svg[match.end() :]


def inline(svg: str) -> str:
    """The <svg>…</svg> element alone: no XML declaration or DOCTYPE (invalid inside HTML)."""
    match = _SVG_OPEN.search(svg)
    if match is None:
        raise ValueError("not an SVG document")
    return svg[match.start() :].strip()
