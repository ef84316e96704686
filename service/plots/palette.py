"""Okabe–Ito colours (Okabe & Ito 2008, "Color Universal Design"): distinguishable with the
common colour-vision deficiencies. Lines also differ in style and marker, bands in hatch, so no
meaning rests on colour alone."""

from __future__ import annotations

BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
BLUISH_GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
REDDISH_PURPLE = "#CC79A7"
GREY = "#999999"

VERDICT_COLOURS: dict[str, str] = {"vanishing": BLUE, "stable": BLUISH_GREEN, "exploding": VERMILLION}
