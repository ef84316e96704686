"""Jacobian products and weight gradients against torch.autograd in float64 (an independent calculation)."""

from __future__ import annotations

import math

import pytest
import torch

from service.engine import analyze
from service.engine.activations import ACTIVATION_TABLE
from service.engine.network import make_parameters

from .conftest import make_spec

WIDTHS = [5, 6, 7, 6, 5]


def autograd_products(spec) -> list[torch.Tensor]:
    """∂h^d/∂h^t for t = 1..d per sample, by torch.autograd.functional.jacobian in float64."""
    params = make_parameters(spec)
    acts = [ACTIVATION_TABLE[a].fn for a in spec.activations]

    def top_from(t: int):
        def f(h):
            for w, act in zip(params.weights[t:], acts[t:], strict=True):
                h = act(w @ h)
            return h

        return f

    # h^t for each sample from the float64 forward
    out = []
    for b in range(spec.batch_size):
        h = params.x[b]
        hs = []
        for w, act in zip(params.weights, acts, strict=True):
            h = act(w @ h)
            hs.append(h)
        out.append([torch.autograd.functional.jacobian(top_from(t), hs[t - 1]) for t in range(1, spec.depth + 1)])
    return [torch.stack([out[b][t] for b in range(spec.batch_size)]) for t in range(spec.depth)]


@pytest.mark.parametrize("activation", sorted(ACTIVATION_TABLE))
def test_products_match_autograd(activation: str) -> None:
    spec = make_spec(
        layers=WIDTHS,
        activation=activation,
        init="normal",
        weight_scale=0.7,
        batch_size=3,
        dtype="float64",
        jacobian={"method": "exact", "singular_values": "all"},
    )
    report = analyze(spec)
    products = autograd_products(spec)
    for t, lr in enumerate(report.layers, start=1):
        p = products[t - 1]  # (B, n_d, n_t)
        jp = lr.jacobian_product
        fro = torch.linalg.matrix_norm(p, ord="fro")
        sv = torch.linalg.svdvals(p)
        assert jp.log10_frobenius_norm == pytest.approx(float(torch.log10(fro).mean()), abs=1e-9)
        assert jp.log10_spectral_norm == pytest.approx(float(torch.log10(sv[:, 0]).mean()), abs=1e-6)
        if jp.min_singular_value_status == "resolved":
            assert jp.log10_min_singular_value == pytest.approx(float(torch.log10(sv[:, -1]).mean()), abs=1e-6)
            cond = torch.log10(sv[:, 0] / sv[:, -1]).mean()
            assert jp.log10_condition_number == pytest.approx(float(cond), abs=1e-6)
        elif jp.min_singular_value_status == "rank_deficient":
            assert float(sv[:, -1].min()) < 1e-12 * float(sv[:, 0].max())


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5), ("bfloat16", 3e-2), ("float16", 5e-3)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_weight_and_output_grads_match_autograd(dtype: str, tol: float, activation: str) -> None:
    spec = make_spec(
        layers=[6, 8, 8, 4],
        activation=activation,
        init="kaiming_normal",
        batch_size=4,
        dtype=dtype,
        bias=True,
        loss="mse",
    )
    report = analyze(spec)
    params = make_parameters(spec)
    ws = [w.clone().requires_grad_(True) for w in params.weights]
    bs = [torch.zeros(w.shape[0], dtype=torch.float64, requires_grad=True) for w in ws]
    h = params.x
    outs = []
    for w, b in zip(ws, bs, strict=True):
        h = ACTIVATION_TABLE[activation].fn(h @ w.T + b)
        h.retain_grad()
        outs.append(h)
    torch.nn.functional.mse_loss(h, torch.zeros_like(h)).backward()
    for lr, w, o in zip(report.layers, ws, outs, strict=True):
        assert lr.weight_grad.norm == pytest.approx(float(w.grad.norm()), rel=tol)
        assert lr.output_grad.norm == pytest.approx(float(o.grad.norm()), rel=tol)
        assert lr.weight_grad.nonfinite_fraction == 0.0


def test_cross_entropy_and_mean_losses_run_and_agree_with_sum_direction() -> None:
    for loss in ("mean", "cross_entropy"):
        r = analyze(make_spec(layers=[4, 8, 3], activation="tanh", loss=loss, batch_size=5))
        assert math.isfinite(r.loss)
        assert r.layers[0].weight_grad.status == "ok"
