"""One self-contained HTML page for a report: inline CSS and SVG, no script, font or URL from
any host, so it works offline, as an e-mail attachment or a CI artefact. Every text that comes
from the report (a spec's values appear in causes and fixes) is HTML-escaped."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .figures import activation_figure, fixes_figure, gradient_figure
from .model import HeatmapFigure, LineFigure
from .phase import phase_figures
from .recurrent_html import recurrent_section
from .render import render_svg
from .svg import inline
from .training_figures import training_figures

CSS = """
:root { color-scheme: light; --fg: #1a1a1a; --muted: #555; --line: #ddd; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); max-width: 62rem; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; } h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; }
.verdict { display: inline-block; padding: .1rem .55rem; border-radius: .3rem; color: #fff; font-weight: 600; }
.verdict.exploding { background: #D55E00; } .verdict.vanishing { background: #0072B2; }
.verdict.stable { background: #007a5a; } .verdict.unknown { background: #555; }
.summary { font-size: 1.05rem; margin: .6rem 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
figure { margin: 1rem 0; } figure svg { width: 100%; height: auto; max-width: 100%; }
figcaption { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; font-size: .8rem; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .2rem .35rem; text-align: right; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
th { position: sticky; top: 0; background: #fafafa; } td.text, th.text { text-align: left; white-space: normal; }
.scroll { max-height: 32rem; overflow: auto; border: 1px solid var(--line); }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
footer { color: var(--muted); font-size: .8rem; margin-top: 2rem; }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, int | float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "—"
    return _e(value)


def _figure(spec: LineFigure | HeatmapFigure) -> str:
    notes = "".join(f" {_e(n)}" for n in spec.notes)
    return f"<figure>{inline(render_svg(spec))}<figcaption>{_e(spec.description)}{notes}</figcaption></figure>"


def _facts(report: Mapping[str, Any]) -> str:
    dg = report.get("diagnosis") or {}
    rt = report.get("runtime") or {}
    th = report.get("theory") or {}
    rows = [
        ("depth", report.get("depth")),
        ("dtype", rt.get("dtype")),
        ("total growth (log10)", dg.get("log10_total_growth")),
        ("growth per layer", dg.get("growth_per_layer")),
        ("theory: growth per layer", th.get("predicted_growth_per_layer")),
        ("onset layer", dg.get("onset_layer")),
    ]
    for kind in ("overflow", "underflow"):
        ev = dg.get(kind) or {}
        where = f"from layer {ev.get('first_layer')} ({ev.get('quantity')})" if ev.get("occurred") else "none"
        rows.append((kind, where))
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_fmt(v)}</dd>" for k, v in rows)
    return f'<dl class="facts">{body}</dl>'


def _architecture(report: Mapping[str, Any]) -> str:
    """Residual/normalised networks: where the blocks and normalisation layers are, and each block's gain beside
    its mean-field prediction. Empty for the plain MLP."""
    arch = report.get("architecture")
    if not arch:
        return ""
    th = (report.get("theory") or {}).get("architecture") or {}
    norm = arch.get("normalization")
    parts = []
    if arch.get("residual_every"):
        parts.append(
            f"residual blocks of {arch['residual_every']} layers, branch_scale {_fmt(arch.get('branch_scale'))}"
        )
    if norm and norm != "none":
        parts.append(f"{norm} ({arch.get('position')}, ε = {_fmt(arch.get('eps'))})")
    parts.append(f"products {str(arch.get('products', '')).replace('_', ' ')}")
    parts.append(f"growth read from layer {arch.get('growth_from_layer')}")
    rows = "".join(
        f"<tr><td>{_e(b['first_layer'])}–{_e(b['last_layer'])}</td><td>{'yes' if b.get('skip') else 'no'}</td>"
        f"<td>{_fmt(b.get('measured_gain'))}</td><td>{_fmt(b.get('predicted_gain'))}</td></tr>"
        for b in th.get("blocks") or []
    )
    theory = (
        f"<p>Mean-field theory ({_e(th.get('status'))}): predicted log10 total growth "
        f"{_fmt(th.get('predicted_log10_total_growth'))}, measured {_fmt(th.get('measured_log10_total_growth'))}, "
        f"error {_fmt(th.get('log10_error'))}. {_e(th.get('reason'))}</p>"
    )
    table = (
        '<div class="scroll"><table><thead><tr><th>layers</th><th>skip</th><th>measured gain</th>'
        f"<th>predicted gain</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
    return f'<section id="architecture"><h2>Architecture</h2><p>{_e("; ".join(parts))}.</p>{theory}{table}</section>'


def _causes(causes: Sequence[Mapping[str, Any]]) -> str:
    if not causes:
        return "<p>No cause to report.</p>"
    items = "".join(f"<li><code>{_e(c.get('code'))}</code>: {_e(c.get('message'))}</li>" for c in causes)
    return f"<ul>{items}</ul>"


def _fixes(recs: Sequence[Mapping[str, Any]]) -> str:
    if not recs:
        return "<p>No change recommended.</p>"
    items = []
    for r in recs:
        change = _e(json.dumps(r.get("change") or {}, ensure_ascii=False, sort_keys=True))
        v = r.get("verified")
        if isinstance(v, Mapping):
            outcome = (
                f"verified: {_e(v.get('verdict'))}, growth per layer {_fmt(v.get('growth_per_layer'))}, "
                f"overflow {_fmt(v.get('overflow'))}, underflow {_fmt(v.get('underflow'))}; "
                f"fixes: {_fmt(r.get('fixes'))}"
            )
        else:
            outcome = "not verified"
        items.append(
            f"<li><code>{change}</code> ({_e(r.get('code'))}): {_e(r.get('rationale'))} <em>{outcome}</em></li>"
        )
    return f"<ul>{''.join(items)}</ul>"


_COLUMNS = (
    ("t", ("index",)),
    ("in→out", None),
    ("log10 ‖∂ℓ/∂W‖", ("weight_grad", "log10_norm")),
    ("log10 ‖P‖₂", ("jacobian_product", "log10_spectral_norm")),
    ("log10 ‖P‖_F", ("jacobian_product", "log10_frobenius_norm")),
    ("min", ("jacobian_product", "log10_frobenius_norm_min")),
    ("max", ("jacobian_product", "log10_frobenius_norm_max")),
    ("log10 RMS gain", ("jacobian_product", "log10_rms_gain")),
    ("mean σ'", ("activation", "sigma_prime_mean")),
    ("saturated", ("activation", "saturated_fraction")),
    ("dead", ("activation", "dead_fraction")),
    ("χ (theory)", None),
)


def _value(layer: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = layer
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _table(report: Mapping[str, Any]) -> str:
    """One row per layer; a column no layer has a value for (dead units of a sigmoid net) is left out, and a
    non-finite ∂ℓ/∂W shows its status (inf, zero) in its cell, so the table fits a 800 px page."""
    chi = {t.get("index"): t.get("chi") for t in ((report.get("theory") or {}).get("layers") or [])}
    layers = list(report.get("layers") or [])
    columns = [
        (name, path)
        for name, path in _COLUMNS
        if path is None
        or name == "t"
        or any(_value(layer, path) is not None for layer in layers)
        or name.startswith("log10 ‖∂ℓ")
    ]
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name, _ in columns)
    rows = []
    for layer in layers:
        cells = []
        for name, path in columns:
            if name == "in→out":
                text = f"{layer.get('in_features')}→{layer.get('out_features')}"
            elif name == "χ (theory)":
                text = _fmt(chi.get(layer.get("index")))
            elif name.startswith("log10 ‖∂ℓ") and _value(layer, path or ()) is None:
                text = _e(_value(layer, ("weight_grad", "status")) or "—")
            else:
                text = _fmt(_value(layer, path or ()))
            cells.append(f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = (
        "Per layer t: P = ∂h^d/∂h^t (exact, float64 log domain; min and max of log10 ‖P‖_F over the batch); "
        "∂ℓ/∂W^t in the pass dtype, or its status where it is not finite; — = not computed."
    )
    return (
        f'<div class="scroll"><table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def report_page(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (UTF-8)."""
    dg = report.get("diagnosis") or {}
    rt = report.get("runtime") or {}
    verdict = str(dg.get("verdict") or "unknown")
    css_class = verdict if verdict in ("exploding", "vanishing", "stable") else "unknown"
    figures = [gradient_figure(report), activation_figure(report)]
    fixes = fixes_figure(report)
    if fixes is not None:
        figures.append(fixes)
    plots = "".join(_figure(f) for f in figures)
    trained = training_figures(report)
    if trained:  # the training probe: its sentence, then its pictures
        sentence = _e(((report.get("training") or {}).get("summary") or {}).get("sentence"))
        plots += f'<h3 id="training">Training</h3><p class="summary">{sentence}</p>'
        plots += "".join(_figure(f) for f in trained)
    footer = (
        f"Report {_e(report.get('id'))} · engine {_e(report.get('engine_version'))} · "
        f"{_e(rt.get('device'))}, torch {_e(rt.get('torch_version'))}, Jacobian {_e(rt.get('jacobian_method'))}, "
        f"{_fmt(rt.get('elapsed_ms'), 4)} ms"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gradient stability: {_e(verdict)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Gradient stability report <span class="verdict {css_class}" id="verdict">{_e(verdict)}</span></h1>
<p class="summary" id="summary">{_e(dg.get("summary"))}</p>
{_facts(report)}
</header>
<main>
<section id="plots"><h2>Plots</h2>{plots}</section>
{_architecture(report)}
{recurrent_section(report)}
<section id="causes"><h2>Causes</h2>{_causes(dg.get("causes") or [])}</section>
<section id="fixes"><h2>Verified fixes</h2>{_fixes(dg.get("recommendations") or [])}</section>
<section id="layers"><h2>Per {"step" if report.get("axis") == "time" else "layer"}</h2>{_table(report)}</section>
</main>
<footer>{footer}</footer>
</body>
</html>
"""


def _document(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
{body}
</body>
</html>
"""


def sweep_page(result: Mapping[str, Any], x: str | None = None, y: str | None = None) -> str:
    """A sweep's phase diagrams (verdict, then log10 growth, each with χ = 1) and its points as a table."""
    figures = phase_figures(result, "verdict", x, y) + phase_figures(result, "log10_total_growth", x, y)
    plots = "".join(_figure(f) for f in figures)
    points = list(result.get("points") or [])
    keys = list(dict.fromkeys(k for p in points for k in (p.get("params") or {})))
    head = "".join(f'<th scope="col">{_e(k)}</th>' for k in [*keys, "verdict", "log10 growth", "χ (theory)"])
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_fmt((p.get('params') or {}).get(k))}</td>" for k in keys)
        + f"<td>{_e(p.get('verdict'))}</td><td>{_fmt(p.get('log10_total_growth'))}</td>"
        + f"<td>{_fmt((p.get('theory') or {}).get('chi'))}</td></tr>"
        for p in points
    )
    body = (
        f'<header><h1>Sweep: {len(points)} analyses</h1></header><main><section id="plots"><h2>Phase diagrams</h2>'
        f'{plots}</section><section id="points"><h2>Points</h2><div class="scroll"><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{rows}</tbody></table></div></section></main>"
    )
    return _document("Gradient stability sweep", body)
