"""Reading matplotlib's SVG back: groups by id, path vertices, and the y axis's tick positions."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

NS = {"svg": "http://www.w3.org/2000/svg"}
_NUMBER = r"-?\d+(?:\.\d+)?"
_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def group(root: ET.Element, gid: str) -> ET.Element:
    found = root.find(f".//svg:g[@id='{gid}']", NS)
    assert found is not None, f"no <g id={gid!r}>"
    return found


def vertices(g: ET.Element) -> list[tuple[float, float]]:
    """Every (x, y) after an M or L command of the group's first path."""
    path = g.find(".//svg:path", NS)
    assert path is not None
    pairs = re.findall(rf"[ML]\s*({_NUMBER})\s+({_NUMBER})", path.get("d", ""))
    return [(float(x), float(y)) for x, y in pairs]


def y_ticks(root: ET.Element) -> list[tuple[int, float]]:
    """(exponent k of the label "10ᵏ", pixel y of the tick) for each labelled y tick."""
    ticks = []
    for g in root.iterfind(".//svg:g", NS):
        if not (g.get("id") or "").startswith("ytick_"):
            continue
        text = g.find(".//svg:text", NS)
        use = g.find(".//svg:use", NS)
        if text is None or use is None or not (text.text or "").startswith("10"):
            continue
        ticks.append((int(text.text[2:].translate(_SUPERSCRIPT)), float(use.get("y"))))
    return ticks


def y_pixel_to_log10(root: ET.Element):
    """The linear map pixel y → log10 value, fitted through two labelled ticks."""
    ticks = y_ticks(root)
    (k0, y0), (k1, y1) = ticks[0], ticks[-1]
    return lambda y: k0 + (y - y0) * (k1 - k0) / (y1 - y0)
