"""The chain's fast paths against plain calculations: the live-unit GEMM (ReLU's dead units skipped) against
the dense chain, the carried and the chunked power iterations against svdvals of explicitly formed products,
and the range events' structural-zero shortcut against classifying every zero from the dense exact logs."""

from __future__ import annotations

import math

import pytest
import torch

import service.engine.jacobian as jacobian
from service.engine import analyze
from service.engine.events import _reference_gradients as reference_gradients
from service.engine.events import _vector_classes, _weight_grad_classes, reference_log_magnitudes
from service.engine.network import TORCH_DTYPES, make_parameters, run_pass
from service.engine.reference import run_reference

from .conftest import chunked_power_here, make_spec

CPU = torch.device("cpu")


def _chain(spec):
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    with torch.no_grad():
        return jacobian.exact_chain(spec, params.weights_as(torch.float64, CPU), ref, torch.float64, CPU).stats


@pytest.mark.parametrize(
    "layers,bias",
    [
        ([160] * 7, False),
        ([96, 600, 130, 256, 200, 180, 128], True),  # unequal widths: layer 2 (130 × 600) stays dense
    ],
)
def test_live_unit_chain_equals_the_dense_chain(monkeypatch: pytest.MonkeyPatch, layers: list[int], bias: bool) -> None:
    spec = make_spec(
        layers=layers,
        activation="relu",
        init="kaiming_normal",
        bias=bias,
        batch_size=3,
        dtype="float64",
        jacobian={"method": "exact", "precision": "float64", "singular_values": "none"},
    )
    ref = run_reference(spec, make_parameters(spec))
    assert any(idx is not None for idx in jacobian._live_units(ref, spec.widths, CPU))  # the path is taken
    live = _chain(spec)
    monkeypatch.setitem(jacobian.LIVE_MIN_UNITS, "cpu", 10**9)
    assert all(idx is None for idx in jacobian._live_units(ref, spec.widths, CPU))
    dense = _chain(spec)
    for a, b in zip(live, dense, strict=True):
        assert a.log10_frobenius_norm == pytest.approx(b.log10_frobenius_norm, abs=1e-12)
        assert a.log10_spectral_norm == pytest.approx(b.log10_spectral_norm, abs=1e-9)
        assert a.rank_bound == b.rank_bound


def _formed_products(spec) -> list[torch.Tensor]:
    """∂h^d/∂h^t = Π diag(σ'(z^i)) W^i formed directly in float64 from the reference σ', t = 1..d-1."""
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    n_d = spec.widths[-1]
    prod = torch.eye(n_d, dtype=torch.float64).expand(spec.batch_size, n_d, n_d)
    out = []
    for t in range(spec.depth, 1, -1):
        prod = (prod * ref.layers[t - 1].sigma_prime[:, None, :]) @ params.weights[t - 1]
        out.insert(0, prod)
    return out


def _spectral_errors(spec) -> list[float]:
    """true − reported log10 σ_max per layer, each checked to be a lower bound."""
    errors = []
    for st, prod in zip(_chain(spec), _formed_products(spec), strict=False):
        true = float(torch.log10(torch.linalg.svdvals(prod)[:, 0]).mean())
        assert st.log10_spectral_norm <= true + 1e-9  # Ritz values never exceed σ_max
        errors.append(true - st.log10_spectral_norm)
    return errors


@pytest.mark.parametrize("chunked", [False, True], ids=["carried", "chunked"])
@pytest.mark.parametrize("activation,init", [("relu", "kaiming_normal"), ("tanh", "xavier_normal")])
def test_one_power_step_is_a_close_lower_bound(
    monkeypatch: pytest.MonkeyPatch, activation: str, init: str, chunked: bool
) -> None:
    if chunked:
        chunked_power_here(monkeypatch)
    spec = make_spec(
        layers=[128] * 41,  # more layers than two chunks: the second starts from the first's basis
        activation=activation,
        init=init,
        batch_size=2,
        jacobian={"method": "exact", "precision": "float64", "singular_values": "none", "power_iterations": 1},
    )
    errors = _spectral_errors(spec)
    assert max(errors) < 0.05
    assert sum(errors) / len(errors) < 0.005


@pytest.mark.parametrize(
    "layers,svd",
    [
        ([64] * 23, "none"),  # 21 chunked layers: a full chunk and a partial one
        ([48, 64, 64, 40, 40, 40, 64, 64, 64, 64, 32], "none"),  # unequal widths: a chunk ends where they change
        ([64] * 23, "auto"),  # layers with svdvals stay out of the chunks
    ],
)
def test_chunked_power_iteration_changes_only_the_spectral_norms(
    monkeypatch: pytest.MonkeyPatch, layers: list[int], svd: str
) -> None:
    """The chunks reorder the power steps, not the chain: every other number is the carried path's, bit for bit."""
    spec = make_spec(
        layers=layers,
        activation="tanh",
        init="xavier_normal",
        batch_size=3,
        jacobian={"method": "exact", "precision": "float64", "singular_values": svd},
    )
    carried = _chain(spec)
    chunked_power_here(monkeypatch)
    assert isinstance(
        jacobian._power_strategy(spec, torch.zeros(3, 8, layers[-1], dtype=torch.float64), {}), jacobian._ChunkedPower
    )
    chunked = _chain(spec)
    assert len(chunked) == len(carried)
    for a, b in zip(chunked, carried, strict=True):
        assert (a.log10_frobenius_norm, a.log10_frobenius_norm_min, a.log10_frobenius_norm_max) == (
            b.log10_frobenius_norm,
            b.log10_frobenius_norm_min,
            b.log10_frobenius_norm_max,
        )
        assert (a.rank_bound, a.min_singular_value_status, a.log10_min_singular_value) == (
            b.rank_bound,
            b.min_singular_value_status,
            b.log10_min_singular_value,
        )
        assert a.log10_spectral_norm == pytest.approx(b.log10_spectral_norm, abs=0.05)
    assert max(_spectral_errors(spec)) < 0.05


def test_products_too_big_to_chunk_keep_the_carried_step(monkeypatch: pytest.MonkeyPatch) -> None:
    chunked_power_here(monkeypatch)
    spec = make_spec(layers=[64] * 6, batch_size=2)
    assert jacobian.layers_per_chunk(spec, CPU, torch.float32) == jacobian.CHUNK_MAX_LAYERS
    assert isinstance(jacobian._power_strategy(spec, torch.zeros(2, 8, 64), {}), jacobian._ChunkedPower)
    monkeypatch.setattr(jacobian, "CHUNK_BYTES", jacobian.CHUNK_MIN_LAYERS * 2 * 64 * 64 * 4)
    assert jacobian.layers_per_chunk(spec, CPU, torch.float32) == jacobian.CHUNK_MIN_LAYERS
    assert jacobian.layers_per_chunk(spec, CPU, torch.float64) == 0  # twice the bytes
    assert isinstance(
        jacobian._power_strategy(spec, torch.zeros(2, 8, 64, dtype=torch.float64), {}), jacobian._CarriedPower
    )


def test_the_cpu_keeps_the_carried_step() -> None:
    spec = make_spec(layers=[64] * 6, batch_size=2)
    assert jacobian.layers_per_chunk(spec, CPU, torch.float32) == 0
    assert jacobian.layers_per_chunk(spec, torch.device("cuda"), torch.float32) == jacobian.CHUNK_MAX_LAYERS
    assert isinstance(jacobian._power_strategy(spec, torch.zeros(2, 8, 64), {}), jacobian._CarriedPower)


@pytest.mark.parametrize(
    "activation,dtype,init,scale",
    [  # underflow in float16 (relu, sigmoid, tanh, identity); cancellation in bfloat16 (relu, identity)
        ("relu", "float16", "xavier_normal", 0.5),
        ("sigmoid", "float16", "xavier_normal", 1.0),
        ("tanh", "float16", "xavier_normal", 0.3),
        ("identity", "float16", "xavier_normal", 0.5),
        ("relu", "bfloat16", "orthogonal", 1.0),
        ("identity", "bfloat16", "orthogonal", 1.0),
    ],
)
def test_zero_classes_match_the_dense_exact_logs(activation: str, dtype: str, init: str, scale: float) -> None:
    spec = make_spec(layers=[24] * 16, activation=activation, init=init, weight_scale=scale, dtype=dtype, batch_size=4)
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    result = run_pass(spec, params, CPU)
    ln_tiny = math.log(float(torch.finfo(TORCH_DTYPES[dtype]).tiny))
    out_logs, w_logs = reference_log_magnitudes(spec, params, ref)
    outs, factored = reference_gradients(spec, params, ref)

    def dense(values, logs) -> tuple[list[int], list[int]]:
        under, cancel = [], []
        for v, lg in zip(values, logs, strict=True):
            at_zero = lg[v == 0]
            nonzero = torch.isfinite(at_zero)
            below = nonzero & (at_zero < ln_tiny)
            under.append(int(below.sum()))
            cancel.append(int(nonzero.sum()) - int(below.sum()))
        return under, cancel

    got_w = _weight_grad_classes(result.weight_grads, factored, 0.0, ln_tiny)
    got_o = _vector_classes(result.output_grads, outs, 0.0, ln_tiny)
    assert (got_w.under, got_w.cancel) == dense(result.weight_grads, w_logs)
    assert (got_o.under, got_o.cancel) == dense(result.output_grads, out_logs)
    assert sum(got_w.under) + sum(got_o.under) + sum(got_w.cancel) > 0  # the spec does lose values


@pytest.mark.parametrize(
    "fields",
    [  # issue 24: the float32 chain was off by 4.6e-6 and 1.7e-6 in log10 (a float32 sum of squares per layer)
        dict(layers={"depth": 20, "width": 256}, activation="gelu", init="xavier_normal", dtype="bfloat16",
             seed=117070, loss="sum", batch_size=8, input_scale=0.01),
        dict(layers={"depth": 10, "width": 256}, activation="softplus", init="kaiming_uniform", weight_scale=4,
             dtype="bfloat16", seed=96681, loss="mse", batch_size=8),
        dict(layers={"depth": 60, "width": 128}, activation="identity", init="kaiming_uniform", batch_size=4),
    ],
    ids=["gelu", "softplus", "identity"],
)  # fmt: skip
def test_float32_chain_norms_within_1e_6_in_log10(fields: dict) -> None:
    """README: the float32 chain's norms agree with exact float64 products to 1e-6 in log10 (measured ≤ 2.3e-7)."""
    spec = make_spec(**fields, jacobian={"method": "exact", "precision": "float32", "singular_values": "none"})
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    with torch.no_grad():
        stats = jacobian.exact_chain(spec, params.weights_as(torch.float32, CPU), ref, torch.float32, CPU).stats
    for st, prod in zip(stats, _formed_products(spec), strict=False):
        fro = float(torch.log10(torch.linalg.matrix_norm(prod)).mean())
        smax = float(torch.log10(torch.linalg.svdvals(prod)[:, 0]).mean())
        assert st.log10_frobenius_norm == pytest.approx(fro, abs=1e-6)
        assert st.log10_spectral_norm <= smax + 1e-6  # a lower bound, up to float32's rounding


POWER_BOUND = 0.1  # README: the power iteration's documented worst shortfall in log10 σ_max (0.077 measured)


def test_the_power_iterations_worst_known_case_is_a_lower_bound_within_the_documented_bound() -> None:
    """Issue 24: silu, orthogonal, input_scale 10 (a nearly flat top of the spectrum, σ_9/σ_1 ≈ 0.91 at layer 9)
    fell 0.077 short of σ_max, over the 0.05 the README then claimed. svdvals of the formed float64 products here;
    spectral_norm_status says which layers are only bounded."""
    spec = make_spec(
        layers={"depth": 30, "width": 256},
        activation="silu",
        init="orthogonal",
        dtype="float64",
        seed=726011,
        loss="mean",
        batch_size=8,
        input_scale=10.0,
    )
    layers = analyze(spec).layers
    shortfalls = []
    for lr, prod in zip(layers, _formed_products(spec), strict=False):
        jp = lr.jacobian_product
        shortfall = float(torch.log10(torch.linalg.svdvals(prod)[:, 0]).mean()) - jp.log10_spectral_norm
        shortfalls.append(shortfall)
        if jp.spectral_norm_status == "exact":
            assert abs(shortfall) < 1e-6
        else:
            assert jp.spectral_norm_status == "lower_bound"
            assert -1e-6 < shortfall < POWER_BOUND
    assert layers[-1].jacobian_product.spectral_norm_status == "exact"  # P_d = I
    assert max(shortfalls) > 0.05  # the case still shows what the old claim missed
