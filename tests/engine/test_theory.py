"""Mean-field theory against closed forms and an independent quadrature (mpmath, split at 0).

χ(σ_w²) = σ_w² E[σ'(z)²] at the fixed point q* = σ_w² E[σ(z)²] of the length map (z ~ N(0, q)); the
critical σ_w² puts χ(q*) = 1. Closed forms: identity 1, relu 2, leaky 2/(1+a²) (χ does not depend on q);
tanh and elu 1 and selu 2/(λ²(1+α²)) (q* → 0, where χ → σ_w²·(σ'(0⁺)² + σ'(0⁻)²)/2); softplus 2 from below
(q* → ∞); sigmoid ≈ 103.0 (solved here independently); gelu and silu have none (χ jumps across 1).
"""

from __future__ import annotations

import itertools

import mpmath as mp
import pytest

from service.engine import analyze
from service.engine.activations import LEAKY_SLOPE, SELU_ALPHA, SELU_SCALE
from service.engine.activations import get as get_activation
from service.engine.network import make_parameters
from service.engine.theory import chi, critical_point

from .conftest import make_spec


def _gauss(f, q: float) -> float:
    """E[f(z)], z ~ N(0, q), by mpmath's adaptive quadrature split at 0 (independent of the engine's grid)."""
    sd = mp.sqrt(q)
    density = lambda z: f(z) * mp.exp(-(z**2) / (2 * q)) / (sd * mp.sqrt(2 * mp.pi))  # noqa: E731
    return float(mp.quad(density, [-mp.inf, -sd, 0, sd, mp.inf]))


def _sigmoid(z):
    return 1 / (1 + mp.exp(-z))


def _bisect(f, lo: float, hi: float, steps: int = 200) -> float:
    flo = f(lo)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (flo > 0):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize(
    "name,expected,rel",
    [
        ("identity", 1.0, 1e-9),
        ("relu", 2.0, 1e-9),
        ("leaky_relu", 2.0 / (1.0 + LEAKY_SLOPE**2), 1e-9),
        ("tanh", 1.0, 1e-9),
        ("elu", 1.0, 1e-9),
        # χ(q*) − 1 is only second order in q* just above the edge, so the bisection lands within ~1e-5
        ("selu", 2.0 / (SELU_SCALE**2 * (1.0 + SELU_ALPHA**2)), 1e-4),
        ("softplus", 2.0, 1e-6),
    ],
)
def test_critical_sigma_w2_matches_closed_forms(name: str, expected: float, rel: float) -> None:
    crit = critical_point(name)
    assert crit.sigma_w2 == pytest.approx(expected, rel=rel)


def test_softplus_is_critical_only_in_the_limit_q_star_to_infinity() -> None:
    """softplus(0) = ln 2: q* > 0 always; χ(q*) < σ_w²/2 < 1 below σ_w² = 2, so 2 is approached from below."""
    crit = critical_point("softplus")
    assert crit.sigma_w2 <= 2.0 and crit.q_star > 1e6
    s2 = 1.9
    q = float(mp.findroot(lambda q: s2 * _gauss(lambda z: mp.log1p(mp.exp(z)) ** 2, q) - q, 50.0))
    assert s2 * _gauss(lambda z: _sigmoid(z) ** 2, q) < 1.0


def test_sigmoid_critical_sigma_w2_from_an_independent_quadrature() -> None:
    def chi_at_fixed_point(s2):
        # sigmoid ∈ (0, 1): q* ∈ (σ_w²/4, σ_w²), the single root of σ_w² E[σ²] − q there
        q = mp.findroot(lambda q: s2 * _gauss(lambda z: _sigmoid(z) ** 2, q) - q, s2 / 2)
        return s2 * _gauss(lambda z: (_sigmoid(z) * (1 - _sigmoid(z))) ** 2, q)

    expected = float(mp.findroot(lambda s2: chi_at_fixed_point(s2) - 1, 100.0))
    assert expected == pytest.approx(103.0, abs=0.05)  # the issue's value, checked independently here
    assert critical_point("sigmoid").sigma_w2 == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_gelu_and_silu_have_no_critical_scale(name: str) -> None:
    """σ(0) = 0, σ'(0) = 1/2, σ ~ relu for large z. The length map's ratio r(q) = E[σ(z)²]/q increases from
    1/4 (q → 0) to 1/2 (q → ∞), so its only finite fixed point (σ_w² r(q) = 1) is unstable: from q = 1 the
    iterates go to q* = 0 (χ = σ_w²/4 < 1) while σ_w² < 1/r(1), and to q* = ∞ (χ = σ_w²/2 > 1) above it.
    Since 1/r(1) lies between 2 and 4, χ jumps across 1 there and no σ_w² gives χ = 1."""
    fn = {"gelu": lambda z: z * mp.ncdf(z), "silu": lambda z: z * _sigmoid(z)}[name]
    qs = [1e-3, 0.1, 1.0, 10.0, 1e3]
    ratios = [_gauss(lambda z: fn(z) ** 2, q) / q for q in qs]
    assert ratios[0] > 0.25 and all(a < b for a, b in itertools.pairwise(ratios)) and ratios[-1] < 0.5
    jump = 1.0 / ratios[qs.index(1.0)]
    assert 2.0 < jump < 4.0 and jump / 4 < 1.0 < jump / 2
    crit = critical_point(name)
    assert crit.sigma_w2 is None and "jumps" in crit.reason
    assert f"σ_w² = {jump:.4g}" in crit.reason  # the engine finds the jump where the independent ratio puts it


def test_q_is_the_second_moment_of_the_pre_activations() -> None:
    """χ of layer 1 from q = E[z²] of the float64 pre-activations (not variance + mean²)."""
    spec = make_spec(layers=[32, 64, 64], activation="tanh", init="xavier_normal", weight_scale=1.3, batch_size=3)
    report = analyze(spec)
    params = make_parameters(spec)
    z = params.x @ params.weights[0].T
    q = float((z**2).mean())
    s2 = 32 * 1.3**2 * 2.0 / (32 + 64)
    expected = s2 * _gauss(lambda u: (1 - mp.tanh(u) ** 2) ** 2, q)
    assert report.theory.layers[0].chi == pytest.approx(expected, rel=1e-7)


def test_report_gives_no_critical_scale_for_gelu_and_says_why() -> None:
    th = analyze(make_spec(layers={"depth": 6, "width": 16}, activation="gelu")).theory
    assert th.critical_weight_scale is None and "jumps" in th.critical_note
    th = analyze(make_spec(layers={"depth": 6, "width": 16}, activation="tanh", init="normal")).theory
    assert th.critical_weight_scale == pytest.approx(1.0 / 4.0, rel=1e-9)  # σ_w² = 16·s² = 1
    assert "square layers" in th.critical_note


QS = [1e-6, 1e-3, 1.0, 3e2, 1.81e5, 1e8]


def _elu_like_chi(q: float, slope: float, scale: float) -> float:
    """E[σ'(z)²] for σ' = scale on z > 0 and scale·slope·e^z below: ½ + slope²·E[e^{2z}; z < 0], in closed form
    E[e^{2z}; z < 0] = e^{2q}·Φ(−2√q) = ½·erfcx(√(2q)) (erfcx(x) = e^{x²}·erfc(x), in mpmath, not torch; at 50
    digits, since 15 leave e^{x²} off by e^{x²·1e-16} where q passes 1e14)."""
    with mp.workdps(50):
        x = mp.sqrt(2 * mp.mpf(q))
        return float(scale**2 * (mp.mpf(1) / 2 + slope**2 * mp.exp(x**2) * mp.erfc(x) / 2))


CLOSED_FORMS = {
    "identity": lambda q: 1.0,
    "relu": lambda q: 0.5,
    "leaky_relu": lambda q: (1.0 + LEAKY_SLOPE**2) / 2.0,
    "elu": lambda q: _elu_like_chi(q, 1.0, 1.0),
    "selu": lambda q: _elu_like_chi(q, SELU_ALPHA, SELU_SCALE),
}


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_chi_matches_closed_forms_across_q(name: str, q: float) -> None:
    """The issue's case: selu at q = 1.81e5 was 2.21092 against the closed form's 2.21377 (a ±12σ grid)."""
    assert chi(get_activation(name), 1.0, q) == pytest.approx(CLOSED_FORMS[name](q), rel=1e-12)


MP_PRIMES = {
    "sigmoid": lambda z: _sigmoid(z) * (1 - _sigmoid(z)),
    "tanh": lambda z: 1 - mp.tanh(z) ** 2,
    "gelu": lambda z: mp.ncdf(z) + z * mp.npdf(z),
    "silu": lambda z: _sigmoid(z) * (1 + z * (1 - _sigmoid(z))),
    "softplus": _sigmoid,
}


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("name", sorted(MP_PRIMES))
def test_chi_matches_mpmath_across_q(name: str, q: float) -> None:
    """No closed form: mpmath's adaptive quadrature of its own σ' (50 digits), split at 0 and at ±1 in z, where
    σ' changes whatever q is."""
    f = MP_PRIMES[name]
    with mp.workdps(50):
        sd = mp.sqrt(mp.mpf(q))
        density = lambda z: f(z) ** 2 * mp.exp(-(z**2) / (2 * q)) / (sd * mp.sqrt(2 * mp.pi))  # noqa: E731
        cuts = sorted({-1.0, 1.0, -float(sd), float(sd)})
        expected = float(mp.quad(density, [-mp.inf, *cuts[:2], 0, *cuts[2:], mp.inf]))
    assert chi(get_activation(name), 1.0, q) == pytest.approx(expected, rel=1e-11)


def test_the_issue_selu_spec_reports_the_closed_form_chi() -> None:
    """selu, xavier_uniform ×2, width 16: σ_w² = 16·4·2/32 = 4, and each layer's χ is 4·E[σ'²] at its own q."""
    spec = make_spec(
        layers={"depth": 50, "width": 16},
        activation="selu",
        init="xavier_uniform",
        weight_scale=2,
        dtype="float16",
        seed=837893,
        loss="mean",
        batch_size=4,
    )
    report = analyze(spec)
    qs = [10.0 ** (2 * lr.activation.log10_pre_activation_rms) for lr in report.layers]
    assert max(qs) > 1e5  # the regime the issue found
    for q, lt in zip(qs, report.theory.layers, strict=True):
        assert lt.chi == pytest.approx(4.0 * CLOSED_FORMS["selu"](q), rel=1e-9)
