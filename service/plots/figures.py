"""Figure data for one report (its wire-form dict): gradient flow, σ' per layer, fixes before/after.

Why each picture:
- `gradient_figure`: the lecture's picture. log10 ‖∂ℓ/∂W^t‖ as computed in the pass dtype (so it
  meets the dtype's range) beside log10 ‖∂h^d/∂h^t‖ (spectral, Frobenius with the batch's
  min–max), which the engine computes exactly in the log domain (so it runs past the range and
  shows where the dtype gave up), and the mean-field prediction √(n_d·Π χ_i).
- `activation_figure`: σ' is the other factor of every Jacobian diag(σ')W.
- `fixes_figure`: the measured RMS gain before a recommended change and after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import palette
from .dtypes import DtypeRange, dtype_range
from .model import Band, Clipped, LineFigure, Marker, OffScale, Series, Spread

Report = Mapping[str, Any]

# A dtype limit is drawn (and kept in view) only where it meets the data: within this many decades of the
# curves' range. One further away would squash every curve onto one line (float32's 1e-45 to 3e38 around a
# stable net's 1e0); it is marked at the view's edge instead (OffScale), with its value.
_LIMIT_REACH_DECADES = 3.0
_PAD_DECADES = 0.5
_SUPERSCRIPT = str.maketrans("-.0123456789", "⁻·⁰¹²³⁴⁵⁶⁷⁸⁹")


def pow10(exponent: float) -> str:
    """10^k in plain Unicode ("10⁻²"): readable in any font, no math renderer needed."""
    return "10" + f"{exponent:g}".translate(_SUPERSCRIPT)


def _get(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    value: Any = mapping
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _unit(report: Report) -> str:
    """What the x-axis counts: a recurrent report's layers[] runs along time (axis "time")."""
    return "step" if report.get("axis") == "time" else "layer"


def _xlabel(report: Report) -> str:
    if report.get("axis") == "time":
        return "step t (1 = first step, T = last; P_t = ∂h_T/∂h_t)"
    return "layer t (1 = input side, d = output side)"


def _layers(report: Report) -> list[Mapping[str, Any]]:
    return list(report.get("layers") or [])


def _xs(layers: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    return tuple(int(layer["index"]) for layer in layers)


def _column(layers: Sequence[Mapping[str, Any]], *keys: str) -> tuple[float | None, ...]:
    return tuple(_num(_get(layer, *keys)) for layer in layers)


def predicted_log10_frobenius(report: Report) -> tuple[float | None, ...]:
    """Mean-field ‖∂h^d/∂h^t‖_F: √n_d · Π_{i=t+1..d} √χ_i (RMS gain × √n_d), in log10.

    At t = d the product is the identity, ‖I‖_F = √n_d; the prediction at t = 1 is the theory's
    `predicted_log10_total_growth` plus log10 √n_d. None from the first χ ≤ 0 or missing downward.
    """
    layers = _layers(report)
    if not layers:
        return ()
    blocks = _get(report, "theory", "architecture", "blocks")
    if blocks:
        return _predicted_at_blocks(layers, blocks)
    chi = {int(t["index"]): _num(t.get("chi")) for t in (_get(report, "theory", "layers") or [])}
    out: list[float | None] = [None] * len(layers)
    acc: float | None = 0.5 * math.log10(int(layers[-1]["out_features"]))
    for pos in range(len(layers) - 1, -1, -1):
        out[pos] = acc
        if acc is None or pos == 0:
            continue
        c = chi.get(int(layers[pos]["index"]))  # χ of layer t+1 carries P from t+1 down to t
        acc = acc + 0.5 * math.log10(c) if c is not None and c > 0 else None
    return tuple(out)


def _predicted_at_blocks(layers: Sequence[Mapping[str, Any]], blocks: Sequence[Mapping[str, Any]]) -> tuple:
    """A residual/normalised network's prediction at its block outputs (blocktheory's per-block gains), from the
    identity at the top down; None inside the blocks, where the theory says nothing."""
    out: list[float | None] = [None] * len(layers)
    acc = _num(_get(layers[-1], "jacobian_product", "log10_frobenius_norm"))
    for block in reversed(blocks):
        last = int(block["last_layer"])
        out[last - 1] = acc
        gain = _num(block.get("predicted_gain"))
        acc = acc + math.log10(gain) if acc is not None and gain is not None and gain > 0 else None
    return tuple(out)


def _defined(xs: tuple[int, ...], ys: tuple[float | None, ...]) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """The points where a per-block series has a value (so its line joins the block outputs), else all of them."""
    if all(y is None for y in ys) or ys.count(None) == 0:
        return xs, ys
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    return tuple(x for x, _ in pairs), tuple(y for _, y in pairs)


def _theory_label(report: Report) -> str:
    if _get(report, "theory", "architecture", "blocks"):
        return "theory: mean field per block (gradient independence)"
    return "theory: √(n_d·Π χ) (mean field)"


def _architecture_series(report: Report, xs: tuple[int, ...], frob: tuple[float | None, ...]) -> list[Series]:
    """Where the residual blocks end and the normalisation layers sit, as markers on the Frobenius curve."""
    arch = report.get("architecture")
    if not arch:
        return []
    at = dict(zip(xs, frob, strict=True))
    out = []
    skips = sorted({int(b["last_layer"]) for b in arch.get("blocks", []) if b.get("skip")})
    if skips:
        label = f"residual block outputs (branch_scale {arch.get('branch_scale')})"
        out.append(
            Series("block-outputs", label, tuple(skips), tuple(at.get(t) for t in skips), palette.ORANGE, "none", "D")
        )
    normed = sorted({int(n["layer"]) for n in arch.get("normalized_layers", [])})
    if normed:
        label = f"{arch.get('normalization')} ({arch.get('position')})"
        out.append(
            Series(
                "normalized",
                label,
                tuple(normed),
                tuple(at.get(t) for t in normed),
                palette.REDDISH_PURPLE,
                "none",
                "x",
            )
        )
    return out


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _view(data: Sequence[float], limits: Sequence[float]) -> tuple[float, float]:
    lo, hi = (min(data), max(data)) if data else (-1.0, 1.0)
    for limit in limits:
        if lo - _LIMIT_REACH_DECADES <= limit <= hi + _LIMIT_REACH_DECADES:
            lo, hi = min(lo, limit), max(hi, limit)
    if hi - lo < 2.0:  # at least two decades, so the ticks read as powers of ten
        mid = (hi + lo) / 2.0
        lo, hi = mid - 1.0, mid + 1.0
    return lo - _PAD_DECADES, hi + _PAD_DECADES


def _dtype_bands(rng: DtypeRange, ylim: tuple[float, float]) -> list[Band]:
    """Overflow above the largest finite, subnormal (lost precision) and flush-to-zero below."""
    lo, hi = ylim
    bands = []
    if rng.log10_max < hi:
        bands.append(
            Band(
                "dtype-overflow",
                f"{rng.dtype} overflow: > {rng.max:.6g} (inf)",
                rng.log10_max,
                None,
                palette.VERMILLION,
                "//",
            )
        )
    if rng.log10_smallest_normal > lo:
        bands.append(
            Band(
                "dtype-subnormal",
                f"{rng.dtype} subnormal: {rng.smallest_subnormal:.2g} to {rng.smallest_normal:.2g}",
                rng.log10_smallest_subnormal,
                rng.log10_smallest_normal,
                palette.YELLOW,
                "..",
            )
        )
    if rng.log10_smallest_subnormal > lo:
        bands.append(
            Band(
                "dtype-underflow",
                f"{rng.dtype} underflow: < {rng.smallest_subnormal:.2g} (0)",
                None,
                rng.log10_smallest_subnormal,
                palette.GREY,
                "\\\\",
            )
        )
    return bands


def _offscale(rng: DtypeRange, ylim: tuple[float, float]) -> list[OffScale]:
    """The dtype's limits that lie beyond the view: an arrow at that edge says where."""
    lo, hi = ylim
    out = []
    if rng.log10_max >= hi:
        out.append(OffScale("dtype-overflow", f"{rng.dtype} overflows above {rng.max:.3g}", "top", palette.VERMILLION))
    if rng.log10_smallest_normal <= lo:
        out.append(
            OffScale(
                "dtype-underflow",
                f"{rng.dtype} subnormal below {rng.smallest_normal:.2g}, 0 below {rng.smallest_subnormal:.2g}",
                "bottom",
                palette.GREY,
            )
        )
    return out


def _event_markers(report: Report) -> list[Marker]:
    markers = []
    onset = _get(report, "diagnosis", "onset_layer")
    if isinstance(onset, int):
        markers.append(
            Marker(
                "onset", f"onset: {_unit(report)} {onset} leaves the stable band", onset, palette.REDDISH_PURPLE, "-."
            )
        )
    for kind, colour in (("overflow", palette.VERMILLION), ("underflow", palette.BLUE)):
        event = _get(report, "diagnosis", kind) or {}
        first = event.get("first_layer")
        if event.get("occurred") and isinstance(first, int):
            what = (event.get("quantity") or "").replace("_", " ")
            where = f"{_unit(report)} {first}"
            markers.append(Marker(f"first-{kind}", f"first {kind}: {where} ({what})", first, colour, ":"))
    return markers


def gradient_figure(report: Report) -> LineFigure:
    """Per-layer log10 norms of ∂ℓ/∂W^t and of ∂h^d/∂h^t against the dtype's range and the stable band."""
    layers = _layers(report)
    xs = _xs(layers)
    rng = dtype_range(report)
    n_d = int(layers[-1]["out_features"]) if layers else 1
    weight = _column(layers, "weight_grad", "log10_norm")
    status = [_get(layer, "weight_grad", "status") for layer in layers]
    spectral = _column(layers, "jacobian_product", "log10_spectral_norm")
    frob = _column(layers, "jacobian_product", "log10_frobenius_norm")
    frob_lo = _column(layers, "jacobian_product", "log10_frobenius_norm_min")
    frob_hi = _column(layers, "jacobian_product", "log10_frobenius_norm_max")
    theory = predicted_log10_frobenius(report)

    data = _finite(weight) + _finite(spectral) + _finite(frob) + _finite(frob_lo) + _finite(frob_hi) + _finite(theory)
    limits = [rng.log10_max, rng.log10_smallest_normal, rng.log10_smallest_subnormal]
    ylim = _view(data, limits)

    thresholds = _get(report, "diagnosis", "thresholds") or {}
    shift = 0.5 * math.log10(n_d)  # the stable band is on the RMS gain ‖P‖_F/√n_d
    bands: list[Band] = []
    low, high = _num(thresholds.get("vanishing_log10")), _num(thresholds.get("exploding_log10"))
    if low is not None and high is not None:
        bands.append(
            Band(
                "stable",
                f"stable band: ‖P‖_F/√n_d within {pow10(low)} to {pow10(high)}",
                low + shift,
                high + shift,
                palette.SKY_BLUE,
            )
        )
    bands.extend(_dtype_bands(rng, ylim))

    clipped = []
    for edge, state, label in (("top", "nonfinite", "inf/NaN"), ("bottom", "zero", "exactly 0")):
        at = tuple(x for x, s in zip(xs, status, strict=True) if s == state)
        if at:
            clipped.append(
                Clipped(f"weight-grad-{state}", f"‖∂ℓ/∂W^t‖ is {label} in {rng.dtype}", at, edge, palette.VERMILLION)
            )

    dtype, method = rng.dtype, _get(report, "runtime", "jacobian_method") or "exact"
    verdict = _get(report, "diagnosis", "verdict") or "unknown"
    d = len(layers)
    offscale = _offscale(rng, ylim)
    description = (
        f"Line chart over layers 1 to {d}, y axis log10 scale. Verdict {verdict}. "
        f"Weight-gradient norm in {dtype}, Jacobian-product spectral and Frobenius norms (batch min–max shaded) "
        f"from an exact float64 log-domain computation, and the mean-field prediction. "
        f"Bands: the stable band and, where they meet the curves, {dtype}'s overflow, subnormal and underflow "
        f"ranges (largest finite {rng.max:.6g}, smallest normal {rng.smallest_normal:.3g}, "
        f"smallest subnormal {rng.smallest_subnormal:.3g}); a limit beyond the view is an arrow at its edge."
    )
    return LineFigure(
        key="gradients",
        title=f"Gradient norm per {_unit(report)} ({dtype}, {d} {_unit(report)}s): {verdict}",
        description=description,
        xlabel=_xlabel(report),
        ylabel="norm (dimensionless), log10 scale",
        yscale="log10",
        ylim=ylim,
        series=(
            Series("weight-grad", f"‖∂ℓ/∂W^t‖ in {dtype}", xs, weight, palette.VERMILLION, "-", "o"),
            Series("jacobian-spectral", f"‖∂h^d/∂h^t‖₂ (spectral, {method})", xs, spectral, palette.BLUE, "-", "s"),
            Series(
                "jacobian-frobenius", f"‖∂h^d/∂h^t‖_F (Frobenius, {method})", xs, frob, palette.BLUISH_GREEN, "-", "^"
            ),
            Series("theory", _theory_label(report), *_defined(xs, theory), palette.BLACK, "--", None),
            *_architecture_series(report, xs, frob),
        ),
        spreads=(
            Spread(
                "jacobian-frobenius-spread", "‖∂h^d/∂h^t‖_F: batch min–max", xs, frob_lo, frob_hi, palette.BLUISH_GREEN
            ),
        ),
        bands=tuple(bands),
        markers=tuple(_event_markers(report)),
        clipped=tuple(clipped),
        offscale=tuple(offscale),
    )


def activation_figure(report: Report) -> LineFigure:
    """Mean σ'(z^t) and the fraction of saturated (σ' < 1% of peak) or dead (σ' = 0) units per layer."""
    layers = _layers(report)
    xs = _xs(layers)
    sigma = _column(layers, "activation", "sigma_prime_mean")
    saturated = _column(layers, "activation", "saturated_fraction")
    dead = _column(layers, "activation", "dead_fraction")
    top = max([1.0, *_finite(sigma)]) * 1.08
    series = [Series("sigma-prime-mean", "mean σ'(z^t)", xs, sigma, palette.BLUE, "-", "o")]
    if any(v is not None for v in saturated):
        series.append(
            Series(
                "saturated-fraction",
                "saturated fraction (σ' < 1% of its peak)",
                xs,
                saturated,
                palette.ORANGE,
                "--",
                "s",
            )
        )
    if any(v is not None for v in dead):
        series.append(Series("dead-fraction", "dead fraction (σ' = 0)", xs, dead, palette.BLACK, ":", "x"))
    names = sorted({str(_get(layer, "activation", "name")) for layer in layers})
    finite = _finite(sigma)
    notes: tuple[str, ...] = ()
    if finite and max(finite) - min(finite) <= 1e-12 * max(1.0, abs(max(finite))):
        notes = (
            f"σ' is {finite[0]:.3g} at every layer ({', '.join(names)}): each Jacobian diag(σ')W is the weights "
            "scaled alike, so the growth comes from the weights alone.",
        )
    return LineFigure(
        key="activations",
        title=f"σ' per {_unit(report)} ({', '.join(names)})",
        description=(
            f"Line chart over layers 1 to {len(layers)}, linear y axis from 0: mean derivative of the activation "
            "and the fraction of saturated or dead units, from the float64 reference forward pass."
        ),
        xlabel=_xlabel(report),
        ylabel="σ' / fraction of units",
        yscale="linear",
        ylim=(0.0, top),
        series=tuple(series),
        notes=notes,
    )


def fixes_figure(report: Report) -> LineFigure | None:
    """The RMS gain ‖∂h^d/∂h^t‖_F/√n_d before and after each verified recommendation, or None.

    The report measures the changed spec only as a whole (`verified.log10_total_growth`), not
    per layer, so "after" is drawn at that measured total spread evenly over the layers (a
    constant gain per layer), from 1 at t = d to the measured total at t = 1; a note says so.
    """
    layers = _layers(report)
    recs = [r for r in (_get(report, "diagnosis", "recommendations") or []) if isinstance(r.get("verified"), Mapping)]
    if not layers or not recs:
        return None
    xs = _xs(layers)
    d = len(layers)
    before = _column(layers, "jacobian_product", "log10_rms_gain")
    colours = (palette.BLUISH_GREEN, palette.ORANGE, palette.REDDISH_PURPLE, palette.SKY_BLUE, palette.YELLOW)
    styles = ("--", "-.", ":")
    series = [Series("before", "before: measured", xs, before, palette.VERMILLION, "-", "o")]
    for i, rec in enumerate(recs):
        total = _num(rec["verified"].get("log10_total_growth"))
        per = total / (d - 1) if total is not None and d > 1 else None
        after = tuple(None if per is None else per * (d - x) for x in xs)
        change = ", ".join(f"{k}={v}" for k, v in (rec.get("change") or {}).items())
        verdict = rec["verified"].get("verdict", "?")
        series.append(
            Series(
                f"after-{i + 1}",
                f"after {change}: {verdict}",
                xs,
                after,
                colours[i % len(colours)],
                styles[i % len(styles)],
                None,
            )
        )
    thresholds = _get(report, "diagnosis", "thresholds") or {}
    low, high = _num(thresholds.get("vanishing_log10")), _num(thresholds.get("exploding_log10"))
    bands = (
        (Band("stable", "stable band", low, high, palette.SKY_BLUE),) if low is not None and high is not None else ()
    )
    data = [v for s in series for v in _finite(s.y)] + ([low, high] if bands else [])
    return LineFigure(
        key="fixes",
        title="RMS gain per layer before and after each verified fix",
        description=(
            f"Line chart over layers 1 to {d}, y axis log10 scale: the measured gain of the gradient from the top "
            f"down to layer t, and for {len(recs)} verified change(s) the measured total gain of the changed "
            "network, drawn as a constant gain per layer."
        ),
        xlabel=_xlabel(report),
        ylabel="RMS gain ‖∂h^d/∂h^t‖_F/√n_d, log10 scale",
        yscale="log10",
        ylim=_view(data, []),
        series=tuple(series),
        bands=bands,
        notes=(
            "After: the report measures a changed spec's total gain, not its per-layer curve; the dashed lines "
            "spread that measured total evenly over the layers.",
        ),
    )
