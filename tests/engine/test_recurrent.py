"""Recurrent specs against torch.autograd on torch.nn.RNN/LSTM/GRU loaded with the same weights (float64), and
against closed forms (a linear RNN: matrix powers; orthogonal W_hh of scale s: s^{T−t})."""

from __future__ import annotations

import math

import pytest
import torch

from schemas.spec import ModelSpecSchema
from service.engine.analysis import analyze
from service.engine.recurrent import make_recurrent_parameters, run_recurrent_pass, torch_module
from service.engine.recurrent_chain import exact_walk
from service.engine.recurrent_ref import run_recurrent_reference

REL = 1e-10


def _spec(cell: str, stacked: int = 1, loss_at: str = "last", **extra):
    body = {
        "recurrent": {
            "cell": cell,
            "steps": 6,
            "hidden": 5,
            "input_dim": 3,
            "stacked": stacked,
            "loss_at": loss_at,
            "forget_bias": 0.7,
        },
        "dtype": "float64",
        "batch_size": 3,
        "init": "normal",
        "weight_scale": 0.6,
        "jacobian": {"method": "exact", "singular_values": "all"},
        "verify_recommendations": False,
        **extra,
    }
    return ModelSpecSchema().load(body)


def _module(spec, params):
    return torch_module(spec, params, torch.float64)


def _state_jacobian(spec, params, mod, t: int) -> torch.Tensor:
    """∂h^L_T/∂S_t per sample (B, h, L·S) by autograd: run to step t, then on from S_t as a leaf."""
    rec = spec.recurrent
    x = params.x
    batch, h = spec.batch_size, rec.hidden
    lstm = rec.cell == "lstm"
    zero = torch.zeros(rec.stacked, batch, h, dtype=torch.float64)
    if t > 0:
        _, state = mod(x[:t], (zero, zero) if lstm else zero)
    else:
        state = (zero, zero) if lstm else zero
    rows = []
    for b in range(batch):

        def f(*s, b=b):
            init = tuple(v[:, None, :] for v in s) if lstm else s[0][:, None, :]
            out, _ = mod(x[t:, b : b + 1], init)
            return out[-1, 0]

        flat = (state[0][:, b], state[1][:, b]) if lstm else (state[:, b],)
        jac = torch.autograd.functional.jacobian(f, flat)
        # (h, L, h) per part → columns ordered layer by layer, h then c (the engine's Rows.flat)
        parts = []
        for layer in range(rec.stacked):
            parts += [j[:, layer] for j in jac]
        rows.append(torch.cat(parts, dim=1))
    return torch.stack(rows)


@pytest.mark.parametrize("cell,stacked", [("rnn", 1), ("lstm", 1), ("gru", 1), ("rnn", 2), ("lstm", 2), ("gru", 2)])
def test_products_match_autograd(cell, stacked):
    spec = _spec(cell, stacked)
    rep = analyze(spec)
    params = make_recurrent_parameters(spec)
    mod = _module(spec, params)
    h = spec.recurrent.hidden
    last = rep.layers[-1].jacobian_product  # ∂h_T/∂S_T: the identity on the top layer's h
    assert last.log10_frobenius_norm == pytest.approx(0.5 * math.log10(h), abs=1e-12)
    for t in range(1, spec.recurrent.steps):
        jac = _state_jacobian(spec, params, mod, t)
        fro = torch.linalg.matrix_norm(jac).log10().mean().item()
        sv = torch.linalg.svdvals(jac)
        st = rep.layers[t - 1].jacobian_product
        assert st.log10_frobenius_norm == pytest.approx(fro, rel=REL, abs=REL)
        assert st.log10_spectral_norm == pytest.approx(sv[:, 0].log10().mean().item(), rel=REL, abs=REL)
        if st.min_singular_value_status == "resolved":
            assert st.log10_min_singular_value == pytest.approx(sv[:, -1].log10().mean().item(), rel=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("loss_at", ["last", "every"])
def test_gradients_match_autograd(cell, loss_at):
    spec = _spec(cell, 2, loss_at, loss="mse")
    params = make_recurrent_parameters(spec)
    mod = _module(spec, params)
    out, _ = mod(params.x)
    top = out[-1:] if loss_at == "last" else out
    loss = sum(torch.nn.functional.mse_loss(o, torch.zeros_like(o)) for o in top)
    loss.backward()
    result = run_recurrent_pass(spec, params, torch.device("cpu"))
    assert result.loss == pytest.approx(float(loss.detach()), rel=REL)
    for k in range(2):
        for name, ours in (("weight_hh", f"W_hh^{k + 1}"), ("weight_ih", f"W_ih^{k + 1}")):
            want = getattr(mod, f"{name}_l{k}").grad
            assert torch.allclose(result.grads[ours], want, rtol=REL, atol=REL * float(want.abs().max()))
    # the exact walk's per-step shares of the top layer's ∂ℓ/∂W_hh sum to autograd's, and match the pass's shares
    ref = run_recurrent_reference(spec, params)
    shares = []

    def visit(t, g_dir, g_log, share, share_log):
        shares.append(share * math.exp(float(share_log)))
        assert torch.allclose(shares[-1], result.step_share(t), rtol=1e-9, atol=1e-12)

    exact_walk(spec, params, ref, visit)
    want = mod.weight_hh_l1.grad
    assert torch.allclose(sum(shares), want, rtol=1e-9, atol=1e-12 * float(want.abs().max()))


def test_orthogonal_linear_rnn_closed_form():
    """identity σ, W_hh orthogonal·s: every singular value of ∂h_T/∂h_t is s^{T−t}."""
    s, steps, h = 0.9, 40, 8
    spec = ModelSpecSchema().load(
        {
            "recurrent": {"cell": "rnn", "steps": steps, "hidden": h, "input_dim": 4},
            "activation": "identity",
            "init": "orthogonal",
            "weight_scale": s,
            "dtype": "float64",
            "jacobian": {"method": "exact"},
            "verify_recommendations": False,
        }
    )
    rep = analyze(spec)
    for t in range(1, steps + 1):
        st = rep.layers[t - 1].jacobian_product
        assert st.log10_frobenius_norm == pytest.approx(0.5 * math.log10(h) + (steps - t) * math.log10(s), abs=1e-10)
        if st.singular_values_source == "svd":
            assert st.log10_spectral_norm == pytest.approx((steps - t) * math.log10(s), abs=1e-10)
            assert st.log10_condition_number == pytest.approx(0.0, abs=1e-9)
    assert rep.axis == "time"
    assert rep.theory.recurrent.log10_pascanu_bound == pytest.approx((steps - 1) * math.log10(s), abs=1e-10)


def test_identity_activation_is_a_matrix_power():
    steps, h = 12, 6
    spec = ModelSpecSchema().load(
        {
            "recurrent": {"cell": "rnn", "steps": steps, "hidden": h, "input_dim": 2},
            "activation": "identity",
            "init": "normal",
            "weight_scale": 0.5,
            "dtype": "float64",
            "jacobian": {"method": "exact"},
            "verify_recommendations": False,
        }
    )
    rep = analyze(spec)
    w = make_recurrent_parameters(spec).w_hh[0]
    for t in range(1, steps + 1):
        power = torch.linalg.matrix_power(w, steps - t)
        st = rep.layers[t - 1].jacobian_product
        assert st.log10_frobenius_norm == pytest.approx(math.log10(float(torch.linalg.matrix_norm(power))), abs=1e-10)
        assert st.log10_spectral_norm == pytest.approx(
            math.log10(float(torch.linalg.matrix_norm(power, ord=2))), abs=1e-10
        )


def test_estimate_agrees_with_exact():
    body = {
        "recurrent": {"cell": "lstm", "steps": 30, "hidden": 16},
        "dtype": "float32",
        "verify_recommendations": False,
    }
    exact = analyze(ModelSpecSchema().load({**body, "jacobian": {"method": "exact"}}))
    est = analyze(ModelSpecSchema().load({**body, "jacobian": {"method": "estimate", "probes": 16}}))
    for a, b in zip(exact.layers, est.layers, strict=True):  # 16 probes of 16 rows: the identity, exact
        assert b.jacobian_product.log10_frobenius_norm == pytest.approx(
            a.jacobian_product.log10_frobenius_norm, abs=1e-9
        )
        assert b.jacobian_product.log10_spectral_norm <= a.jacobian_product.log10_spectral_norm + 1e-9


def test_exploding_relu_rnn_overflows_float16_and_is_diagnosed():
    spec = ModelSpecSchema().load(
        {
            "recurrent": {"cell": "rnn", "steps": 120, "hidden": 16, "input_dim": 4},
            "activation": "relu",
            "init": "orthogonal",
            "weight_scale": 2.0,
            "dtype": "float16",
            "batch_size": 4,
        }
    )
    rep = analyze(spec)
    d = rep.diagnosis
    assert d.verdict == "exploding"
    assert d.overflow.occurred and d.overflow.quantity == "forward_activation"
    assert "recurrent_too_large" in [c.code for c in d.causes]
    assert rep.theory.recurrent.pascanu_condition == "exploding_possible"
    fixes = [r for r in d.recommendations if r.fixes]
    assert fixes and all(r.verified.batch_size == 4 for r in fixes)
    assert rep.recurrent.clipping.kind == "training_time" and rep.recurrent.clipping.measured_norm is None  # inf


def test_clipping_threshold_from_the_stable_steps():
    spec = ModelSpecSchema().load(
        {
            "recurrent": {"cell": "rnn", "steps": 60, "hidden": 16, "input_dim": 4},
            "init": "xavier_normal",
            "weight_scale": 2.0,
            "input_scale": 0.05,
            "verify_recommendations": False,
        }
    )
    rep = analyze(spec)
    clip = rep.recurrent.clipping
    assert rep.diagnosis.verdict == "exploding"
    assert clip.threshold < clip.measured_norm and clip.clip_factor == pytest.approx(
        clip.threshold / clip.measured_norm
    )
    # the measured norm is ‖∂ℓ/∂W_hh‖ of the pass
    hh = next(g for g in rep.recurrent.weight_grads if g.matrix == "W_hh" and g.gate is None)
    assert clip.measured_norm == pytest.approx(hh.stats.norm, rel=1e-6)
    assert all(r.code != "clipping" for r in rep.diagnosis.recommendations)


def test_vanishing_tanh_rnn_pascanu_and_fix():
    spec = ModelSpecSchema().load(
        {
            "recurrent": {"cell": "rnn", "steps": 50, "hidden": 32, "input_dim": 8},
            "init": "orthogonal",
            "weight_scale": 0.5,
            "input_scale": 0.1,
            "batch_size": 4,
        }
    )
    rep = analyze(spec)
    assert rep.diagnosis.verdict == "vanishing"
    assert rep.theory.recurrent.pascanu_condition == "vanishing_guaranteed"
    assert "recurrent_too_small" in [c.code for c in rep.diagnosis.causes]
    # the bound holds: ‖P_1‖₂ ≤ (γσ_max)^{T−1}
    assert rep.layers[0].jacobian_product.log10_spectral_norm <= rep.theory.recurrent.log10_pascanu_bound + 1e-9
    assert any(r.fixes for r in rep.diagnosis.recommendations)
    assert rep.recurrent.clipping.clip_factor == 1.0  # nothing explodes: clipping would not bound anything


def test_float16_underflow_steps_match_an_independent_float64_backward():
    """The steps whose ∂ℓ/∂h_t the float16 pass flushes to 0 (exact below float16's smallest normal), counted from
    a float64 autograd backward through the same cell equations with the same (float16-representable) weights."""
    from service.engine.recurrent import cell

    spec = ModelSpecSchema().load(
        {
            "recurrent": {"cell": "rnn", "steps": 60, "hidden": 16, "input_dim": 4},
            "init": "orthogonal",
            "weight_scale": 0.7,
            "dtype": "float16",
            "batch_size": 4,
            "verify_recommendations": False,
        }
    )
    rep = analyze(spec)
    params = make_recurrent_parameters(spec)
    h = torch.zeros(4, 16, dtype=torch.float64, requires_grad=True)
    outs = []
    for t in range(60):
        h = cell("rnn", "tanh", h, None, params.x[t], params.w_hh[0], params.w_ih[0], params.biases[0]).h
        h.retain_grad()
        outs.append(h)
    outs[-1].sum().backward()
    passed = run_recurrent_pass(spec, params, torch.device("cpu"))
    tiny = torch.finfo(torch.float16).tiny
    flagged = []
    for t in range(1, 61):
        exact, got = outs[t - 1].grad, passed.output_grads[t - 1]
        under = int(((got == 0) & (exact != 0) & (exact.abs() < tiny)).sum())
        if under / got.numel() > 0.01 and under >= 2:
            flagged.append(t)
    assert flagged, "the spec must underflow for the test to mean anything"
    event = rep.diagnosis.underflow.by_quantity["output_grad"]
    assert event.first_layer == max(flagged) and event.layer_count == len(flagged)


def test_learning_rate_gives_update_ratios_of_every_matrix():
    spec = _spec("lstm", 1, learning_rate=0.1)
    rep = analyze(spec)
    params = make_recurrent_parameters(spec)
    for g in rep.recurrent.weight_grads:
        w = (params.w_hh if g.matrix == "W_hh" else params.w_ih)[g.layer - 1]
        if g.gate is not None:
            k = "ifgo".index(g.gate)
            w = w[k * 5 : (k + 1) * 5]
        assert g.update.weight_norm == pytest.approx(float(torch.linalg.matrix_norm(w)), rel=1e-12)
        assert g.update.update_ratio == pytest.approx(0.1 * g.stats.norm / g.update.weight_norm, rel=1e-12)


def test_reference_fidelity_along_time():
    """A contractive recurrence keeps one input rounding small (trusted); a chaotic tanh recurrence grows it past
    the tolerance at some step, and the report says from which."""
    base = {"recurrent": {"cell": "rnn", "steps": 200, "hidden": 32, "input_dim": 4}, "init": "xavier_normal"}
    calm = analyze(ModelSpecSchema().load({**base, "weight_scale": 0.5, "verify_recommendations": False}))
    assert calm.reference_fidelity.trusted and len(calm.reference_fidelity.log10_relative_errors) == 200
    wild = analyze(ModelSpecSchema().load({**base, "weight_scale": 6.0, "verify_recommendations": False}))
    first = wild.reference_fidelity.first_untrusted_layer
    assert first is not None and 1 < first < 200
    assert any("chaotic from step" in n for n in wild.runtime.notes)
