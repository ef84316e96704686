"""The HTML report's section for a recurrent spec: the cell and horizon, Pascanu's bound or the keep gate beside
the measurement, every recurrent matrix's gradient, and gradient clipping as a training-time threshold."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any


def _e(value: Any) -> str:
    return html.escape("—" if value is None else str(value))


def _f(value: Any) -> str:
    return "—" if value is None else (f"{value:.4g}" if isinstance(value, float) else _e(value))


def _stats(grad: Mapping[str, Any]) -> Mapping[str, Any]:
    return grad.get("stats") or {}


def recurrent_section(report: Mapping[str, Any]) -> str:
    rec = report.get("recurrent")
    if not rec:
        return ""
    th = (report.get("theory") or {}).get("recurrent") or {}
    clip = rec.get("clipping") or {}
    facts = [
        f"{_e(rec['cell'])} cell, {_e(rec['steps'])} steps, hidden {_e(rec['hidden'])}, input {_e(rec['input_dim'])}, "
        f"{_e(rec['stacked'])} stacked, loss at {_e(rec['loss_at'])}, forget bias {_f(rec.get('forget_bias'))}",
        f"onset {_e(rec.get('onset_steps_back'))} steps back from the last",
    ]
    if th.get("pascanu_condition"):
        facts.append(
            f"Pascanu: σ_max(W_hh) = {_f((th.get('sigma_max_recurrent') or [None])[-1])} against 1/γ = "
            f"{_f(th.get('pascanu_threshold'))}: {_e(th['pascanu_condition'])}; bound log10 ‖∂h_T/∂h_1‖₂ ≤ "
            f"{_f(th.get('log10_pascanu_bound'))}; σ_max = 1/γ at weight_scale {_f(th.get('pascanu_weight_scale'))}"
        )
    if th.get("log10_keep_gate_decay") is not None:
        facts.append(f"keep gate: the cell path's predicted decay 10^{_f(th['log10_keep_gate_decay'])}")
    facts.append(
        f"gradient clipping (training time, not a fix): threshold {_f(clip.get('threshold'))} against the measured "
        f"norm {_f(clip.get('measured_norm'))}, factor {_f(clip.get('clip_factor'))}. {_e(clip.get('note'))}"
    )
    rows = "".join(
        f"<tr><td>{_e(g['layer'])}</td><td>{_e(g['matrix'])}</td><td>{_e(g.get('gate') or 'all')}</td>"
        f"<td>{_f(_stats(g).get('log10_norm'))}</td><td>{_e(_stats(g).get('status'))}</td></tr>"
        for g in rec.get("weight_grads") or []
    )
    items = "".join(f"<li>{f}</li>" for f in facts)
    return (
        f'<section id="recurrent"><h2>Through time</h2><ul>{items}</ul>'
        '<div class="scroll"><table><thead><tr><th>layer</th><th>matrix</th><th>gate</th><th>log10 ‖∂ℓ/∂W‖</th>'
        f"<th>status</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
    )
