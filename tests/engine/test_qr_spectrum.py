"""σ_min and κ of long products beyond float64's 1e-13 relative resolution (singular_values=all, QR form).

Checked against svdvals where those resolve, against the same product multiplied out in 120-digit
arithmetic (mpmath), and against the Lyapunov spectrum of Gaussian products: for W with N(0, 1/n)
entries, ln σ_i of a product of L factors grows like L·½(ln(2/n) + ψ((n − i + 1)/2)), so
ln κ ≈ L·½(ψ(n/2) − ψ(1/2)).
"""

from __future__ import annotations

import math

import mpmath as mp
import pytest

from service.engine import analyze
from service.engine.network import make_parameters
from service.engine.qr_spectrum import product_spectrum
from service.engine.reference import run_reference

from .conftest import make_spec

ALL = {"method": "exact", "singular_values": "all"}


def test_qr_agrees_with_svdvals_where_those_resolve() -> None:
    body = {
        "layers": {"depth": 100, "width": 64},
        "activation": "identity",
        "init": "xavier_normal",
        "dtype": "float64",
        "input_scale": 0.001,
        "jacobian": ALL,
    }
    spec = make_spec(**body)
    report = analyze(spec)
    params = make_parameters(spec)
    spectrum = product_spectrum(spec, params, run_reference(spec, params))
    sources = [lr.jacobian_product.singular_values_source for lr in report.layers[:-1]]
    assert "qr" in sources and "svd" in sources
    for t, lr in enumerate(report.layers[:-1], start=1):
        j = lr.jacobian_product
        assert j.min_singular_value_status == "resolved" and j.condition_number_status == "resolved"
        if j.singular_values_source == "svd":  # svdvals resolved this one: the QR form must agree with it
            # (svdvals of the formed product carry an error of ~1e-15·σ_max, i.e. κ·1e-15 relative on σ_min)
            tol = max(1e-9, 10.0 ** (j.log10_condition_number - 14.0))
            smax, smin = spectrum.log_smax[t - 1], spectrum.log_smin[t - 1]
            assert float(smin.mean()) / math.log(10) == pytest.approx(j.log10_min_singular_value, abs=tol)
            assert float((smax - smin).mean()) / math.log(10) == pytest.approx(j.log10_condition_number, abs=tol)
    assert report.layers[0].jacobian_product.log10_condition_number > 100  # not the 13.0 a bound would print


def test_qr_matches_a_120_digit_product() -> None:
    spec = make_spec(
        layers={"depth": 40, "width": 4},
        activation="identity",
        init="normal",
        batch_size=1,
        dtype="float64",
        jacobian=ALL,
    )
    r = analyze(spec)
    ws = make_parameters(spec).weights
    with mp.workdps(120):
        prod = mp.eye(4)
        for w in ws[:0:-1]:  # P_1 = W^d ··· W^2
            prod = prod * mp.matrix(w.tolist())
        sv = sorted((abs(s) for s in mp.svd_r(prod, compute_uv=False)), reverse=True)
        log10_smin = float(mp.log10(sv[-1]))
        log10_cond = float(mp.log10(sv[0] / sv[-1]))
    j = r.layers[0].jacobian_product
    assert log10_cond > 15  # beyond what the formed float64 product resolves
    assert j.singular_values_source == "qr"
    assert j.log10_min_singular_value == pytest.approx(log10_smin, abs=1e-9)
    assert j.log10_condition_number == pytest.approx(log10_cond, abs=1e-9)


def test_condition_number_follows_the_lyapunov_spread_of_gaussian_products() -> None:
    n, depth, batch = 8, 400, 8
    spec = make_spec(
        layers={"depth": depth, "width": n},
        activation="identity",
        init="xavier_normal",  # square: Var = 1/n
        batch_size=batch,
        dtype="float64",
        jacobian=ALL,
    )
    j = analyze(spec).layers[0].jacobian_product
    factors = depth - 1
    spread = 0.5 * (float(mp.digamma(n / 2)) - float(mp.digamma(0.5))) * factors / math.log(10)
    top = 0.5 * (math.log(2.0 / n) + float(mp.digamma(n / 2))) * factors / math.log(10)
    # fluctuations: ln χ²_k has variance ψ'(k/2); summed over the factors, averaged over the batch
    sd = math.sqrt(factors * (float(mp.psi(1, 0.5)) + float(mp.psi(1, n / 2))) / 4 / batch) / math.log(10)
    assert j.singular_values_source == "qr" and j.condition_number_status == "resolved"
    assert j.log10_condition_number == pytest.approx(spread, abs=5 * sd)
    assert j.log10_spectral_norm == pytest.approx(top, abs=5 * sd)
    assert spread > 200  # far beyond 1e13


def test_a_bounded_condition_number_says_it_is_a_lower_bound() -> None:
    r = analyze(
        make_spec(
            layers={"depth": 100, "width": 64},
            activation="identity",
            init="xavier_normal",
            dtype="float64",
            input_scale=0.001,
            jacobian={"method": "exact", "singular_values": "auto"},
        )
    )
    j = r.layers[0].jacobian_product
    assert j.min_singular_value_status == "upper_bound" and j.condition_number_status == "lower_bound"
