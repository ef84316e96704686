"""Theory beside a recurrent network's measurement: Pascanu's bound and the mean-field χ (rnn cell), the
state-keeping gate's decay (lstm, gru)."""

from __future__ import annotations

import math
import statistics

import torch

from .activations import get as get_activation
from .network import weight_variance
from .recurrent import GATES, RecurrentParameters
from .recurrent_ref import RecurrentReference
from .report import LayerTheory, RecurrentTheory, Theory
from .spec import ModelSpec
from .theory import _critical_scale, chi

# |γ·σ_max − 1| up to this is the boundary (an orthogonal W_hh's σ_max is 1 only up to rounding)
BOUNDARY = 1e-6
# sup |σ'|: Pascanu's γ
GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "leaky_relu": 1.0, "identity": 1.0}


def _sigma_max(w: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(w, ord=2))


def recurrent_theory(spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference) -> Theory:
    rec = spec.recurrent
    assert rec is not None
    h = rec.hidden
    smax = [_sigma_max(w) for w in params.w_hh]
    sw2 = h * weight_variance(spec.init, spec.weight_scale, h, h)
    if rec.cell == "rnn":
        return _rnn_theory(spec, ref, smax, sw2)
    k = 1  # lstm f, gru z: the second gate block
    name = "f" if rec.cell == "lstm" else "z"
    keep = [float(row[-1].cache[name].mean()) for row in ref.steps]
    decay = sum(math.log10(m) for m in keep[1:]) if all(m > 0 for m in keep[1:]) else None
    rt = RecurrentTheory(
        gamma=None,
        sigma_max_recurrent=smax,
        pascanu_threshold=None,
        pascanu_condition=None,
        log10_pascanu_bound=None,
        pascanu_weight_scale=None,
        mean_keep_gate=keep,
        log10_keep_gate_decay=decay,
        reason=f"Pascanu's bound is for h = σ(W_hh h + …); a {rec.cell} cell's gradient also flows along the "
        f"{'cell state c' if rec.cell == 'lstm' else 'gated skip z⊙h'}, multiplied by its gate (block {k}: {name}) "
        "every step, so the mean gate per step predicts that path's decay (log10_keep_gate_decay), not the total: the "
        "h path through W_hh adds to it; no mean-field χ for gated cells, so predicted_log10_total_growth is null",
    )
    return Theory(
        sigma_w2=sw2,
        chi_mean=None,
        # the keep gate predicts the c path only; the h path through W_hh adds to it, so no total is predicted
        predicted_growth_per_layer=None,
        predicted_log10_total_growth=None,
        depth_scale=-1.0 / math.log(statistics.fmean(keep)) if 0 < statistics.fmean(keep) < 1 else None,
        critical_weight_scale=None,
        critical_note=f"no critical weight scale for a {rec.cell} cell: the gates, not W_hh's scale alone, set the "
        "decay; a forget bias keeps the gate open",
        layers=[LayerTheory(index=t, chi=None, predicted_gain=m) for t, m in enumerate(keep, start=1)],
        recurrent=rt,
    )


def _rnn_theory(spec: ModelSpec, ref: RecurrentReference, smax: list[float], sw2: float) -> Theory:
    rec = spec.recurrent
    assert rec is not None
    act = get_activation(spec.activations[0])
    gamma = GAMMA[act.name]
    steps = rec.steps
    top = smax[-1]
    if abs(gamma * top - 1.0) <= BOUNDARY:
        condition = "boundary"
    elif gamma * top < 1.0:
        condition = "vanishing_guaranteed"
    else:
        condition = "exploding_possible"
    bound = (steps - 1) * math.log10(gamma * top) if top > 0 else -math.inf
    layers: list[LayerTheory] = []
    chis: list[float] = []
    for t, row in enumerate(ref.steps, start=1):
        z = row[-1].cache["z"]
        q = 1.0 if act.homogeneous else float((z * z).mean())
        c = chi(act, sw2, q)
        layers.append(LayerTheory(index=t, chi=c, predicted_gain=math.sqrt(c) if c >= 0 else None))
        if t >= 2:
            chis.append(c)
    positive = chis and all(c > 0 for c in chis)
    chi_mean = math.exp(statistics.fmean(math.log(c) for c in chis)) if positive else None
    crit, note = _critical_scale(spec)
    rt = RecurrentTheory(
        gamma=gamma,
        sigma_max_recurrent=smax,
        pascanu_threshold=1.0 / gamma,
        pascanu_condition=condition,
        log10_pascanu_bound=bound if math.isfinite(bound) else None,
        pascanu_weight_scale=spec.weight_scale / (gamma * top) if top > 0 else None,
        mean_keep_gate=None,
        log10_keep_gate_decay=None,
        reason="Pascanu, Mikolov & Bengio 2013: ‖∂h_T/∂h_1‖₂ ≤ (γ·σ_max(W_hh))^{T−1}; mean-field χ = σ_w²·E[σ'(z)²] "
        "with z's measured variance per step treats W_hh as redrawn every step (it is not), so it is the typical "
        "per-step factor, not a bound",
    )
    return Theory(
        sigma_w2=sw2,
        chi_mean=chi_mean,
        predicted_growth_per_layer=math.sqrt(chi_mean) if chi_mean is not None else None,
        predicted_log10_total_growth=sum(0.5 * math.log10(c) for c in chis)
        if positive
        else (0.0 if not chis else None),
        depth_scale=-1.0 / math.log(chi_mean) if chi_mean not in (None, 1.0) else None,
        critical_weight_scale=crit,
        critical_note=note,
        layers=layers,
        recurrent=rt,
    )


__all__ = ["GAMMA", "GATES", "recurrent_theory"]
