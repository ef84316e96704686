"""The float64 reference of a recurrent network and its backward step (`cell_vjp`), which the products, the exact
gradients and the tests share.

Bounded cells (tanh, sigmoid, lstm, gru) are formed at their true size. A homogeneous rnn cell (relu, leaky_relu,
identity) keeps each layer's state as v·e^c with max|v| = 1 and one float64 log scale c per sample, so a state of
1e300 (or 1e-300) stays exact: σ(W_hh v e^c + W_ih u e^{c'}) = e^m·σ(W_hh v e^{c−m} + W_ih u e^{c'−m}).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .activations import get as get_activation
from .products import unit_rows
from .recurrent import RecurrentParameters, cell
from .spec import ModelSpec

Tensor = torch.Tensor


@dataclass
class StepCache:
    """One layer at one step: what its backward reads, its input direction and h_prev direction (with their log
    scales per sample), and the pre-activation z (rnn) or candidate (lstm g, gru n) for the statistics."""

    cache: dict[str, Tensor]
    h_prev: Tensor  # direction (B, h)
    h_prev_log: Tensor  # (B,)


@dataclass
class RecurrentReference:
    steps: list[list[StepCache]]  # [t][layer], t = 0..T-1 for steps 1..T
    top_h: list[Tensor]  # top layer h_t direction, (B, h)
    top_log: list[Tensor]  # its log scale (B,)
    homogeneous: bool
    notes: list[str] = field(default_factory=list)


def run_recurrent_reference(spec: ModelSpec, params: RecurrentParameters) -> RecurrentReference:
    rec = spec.recurrent
    assert rec is not None
    act = spec.activations[0]
    homogeneous = rec.cell == "rnn" and get_activation(act).homogeneous
    batch, h = spec.batch_size, rec.hidden
    zeros = torch.zeros(batch, dtype=torch.float64)
    hs = [(torch.zeros(batch, h, dtype=torch.float64), zeros.clone()) for _ in range(rec.stacked)]
    cs = [torch.zeros(batch, h, dtype=torch.float64) if rec.cell == "lstm" else None for _ in hs]
    steps: list[list[StepCache]] = []
    top_h: list[Tensor] = []
    top_log: list[Tensor] = []
    for t in range(rec.steps):
        inp, inp_log = params.x[t], zeros
        row: list[StepCache] = []
        for layer in range(rec.stacked):
            v, c = hs[layer]
            if homogeneous:
                m = torch.maximum(c, inp_log)
                out = cell(
                    "rnn",
                    act,
                    v * torch.exp(c - m)[:, None],
                    None,
                    inp * torch.exp(inp_log - m)[:, None],
                    params.w_hh[layer],
                    params.w_ih[layer],
                    params.biases[layer],
                )
                new, ln = unit_rows(out.h)
                new_log = torch.where(torch.isfinite(ln), ln + m, torch.zeros_like(ln))
                out.cache["m"] = m  # z's log scale: the true pre-activation is z·e^m
            else:
                out = cell(
                    rec.cell, act, v, cs[layer], inp, params.w_hh[layer], params.w_ih[layer], params.biases[layer]
                )
                new, new_log = out.h, zeros
                cs[layer] = out.c
            row.append(StepCache(out.cache, v, c))
            hs[layer] = (new, new_log)
            inp, inp_log = new, new_log
        steps.append(row)
        top_h.append(inp)
        top_log.append(inp_log)
    return RecurrentReference(steps, top_h, top_log, homogeneous)


def _sp(name: str, cache: dict[str, Tensor]) -> Tensor:
    return get_activation(name).prime(cache["z"])


def cell_vjp(
    kind: str, act: str, cache: dict[str, Tensor], w_hh: Tensor, w_ih: Tensor, g_h: Tensor, g_c: Tensor | None
) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """Rows g (B, k, h) on one layer's new state (h', and c' for lstm) → rows on (h_prev, c_prev), on the layer's
    input, and the rows on h_prev·W_hhᵀ (whose product with h_prev is the step's share of ∂ℓ/∂W_hh)."""

    def b(name: str) -> Tensor:
        return cache[name][:, None, :]

    if kind == "rnn":
        gz = g_h * _sp(act, cache)[:, None, :]
        return gz @ w_hh, None, gz @ w_ih, gz
    if kind == "lstm":
        i, f, g, o, tc = b("i"), b("f"), b("g"), b("o"), b("tc")
        g_cn = g_h * o * (1.0 - tc * tc)
        if g_c is not None:
            g_cn = g_cn + g_c
        d = torch.cat(
            [
                g_cn * g * i * (1.0 - i),
                g_cn * b("c_prev") * f * (1.0 - f),
                g_cn * i * (1.0 - g * g),
                g_h * tc * o * (1.0 - o),
            ],
            dim=-1,
        )
        return d @ w_hh, g_cn * f, d @ w_ih, d
    r, z, n = b("r"), b("z"), b("n")
    d_n = g_h * (1.0 - z) * (1.0 - n * n)
    d_r = d_n * b("hn") * r * (1.0 - r)
    d_z = g_h * (b("h_prev") - n) * z * (1.0 - z)
    d_hh = torch.cat([d_r, d_z, d_n * r], dim=-1)
    d_in = torch.cat([d_r, d_z, d_n], dim=-1)
    return d_hh @ w_hh + g_h * z, None, d_in @ w_ih, d_hh


@dataclass
class Rows:
    """Rows on the whole stack's state at one step: per layer (h part, c part or None), unit Frobenius norm per
    sample over all parts, and ln of that norm per sample."""

    h: list[Tensor]
    c: list[Tensor | None]
    log: Tensor

    def flat(self) -> Tensor:
        parts = [p for hv, cv in zip(self.h, self.c, strict=True) for p in ((hv,) if cv is None else (hv, cv))]
        return torch.cat(parts, dim=-1)

    def unit(self) -> Rows:
        """Renormalised to unit Frobenius norm per sample (rows renormalised every step never near float64's
        range, so one division does it); zero rows stay zero with log −inf."""
        _, ln = unit_rows(self.flat())
        div = torch.where(torch.isfinite(ln), torch.exp(ln), torch.ones_like(ln)).to(self.h[0].dtype)[:, None, None]
        return Rows(
            [v / div for v in self.h], [None if v is None else v / div for v in self.c], self.log + ln.to(self.log)
        )


def step_back(
    spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference, rows: Rows, t: int
) -> tuple[Rows, Tensor]:
    """Rows on the stack's state after step t (0-based) → rows on it before step t (not renormalised), and the rows
    on the top layer's h_prev·W_hhᵀ at step t (same scale as `rows`)."""
    rec = spec.recurrent
    assert rec is not None
    act = spec.activations[0]
    hs, cs = list(rows.h), list(rows.c)
    top_hh = hs[-1]
    for layer in range(rec.stacked - 1, -1, -1):
        g_prev, c_prev, g_in, g_hh = cell_vjp(
            rec.cell, act, ref.steps[t][layer].cache, params.w_hh[layer], params.w_ih[layer], hs[layer], cs[layer]
        )
        if layer == rec.stacked - 1:
            top_hh = g_hh
        hs[layer], cs[layer] = g_prev, c_prev
        if layer > 0:
            hs[layer - 1] = hs[layer - 1] + g_in
    return Rows(hs, cs, rows.log), top_hh
