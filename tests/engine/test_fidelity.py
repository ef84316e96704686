"""The float64 reference's own error (issue 24) against a 50-digit forward (mpmath) of the same weights and inputs.

A chaotic tanh net amplifies float64's roundings: the engine's perturbed second forward must see where, within a
few layers and on the safe side, and must not cry wolf on nets that are not chaotic.
"""

from __future__ import annotations

import math

import mpmath as mp
import pytest

from service.engine import analyze
from service.engine.fidelity import TOLERANCE, check_reference
from service.engine.network import make_parameters
from service.engine.reference import run_reference

from .conftest import make_spec


def _mpmath_errors(spec, params, ref) -> list[float]:
    """Per layer, max over samples of the relative error of the float64 reference's h^t and σ'(z^t) (tanh)."""
    errors = [0.0] * spec.depth
    with mp.workdps(50):
        weights = [[[mp.mpf(v) for v in row] for row in w.tolist()] for w in params.weights]
        for b in range(spec.batch_size):
            h = [mp.mpf(v) for v in params.x[b].tolist()]
            for t, w in enumerate(weights):
                z = [mp.fdot(row, h) for row in w]
                h = [mp.tanh(v) for v in z]
                sp = [1 - v**2 for v in h]
                lr = ref.layers[t]
                h64 = (lr.h_dir[b] * math.exp(float(lr.h_log_scale[b]))).tolist()
                for exact, f64 in ((h, h64), (sp, lr.sigma_prime[b].tolist())):
                    norm = mp.sqrt(mp.fsum(v * v for v in exact))
                    diff = mp.sqrt(mp.fsum((a - c) ** 2 for a, c in zip(exact, f64, strict=True)))
                    errors[t] = max(errors[t], float(diff / norm))
    return errors


def _tanh(scale: float, init: str, depth: int = 60):
    return make_spec(
        layers={"depth": depth, "width": 32},
        activation="tanh",
        init=init,
        weight_scale=scale,
        dtype="float32",
        batch_size=2,
        seed=15952,
    )


def test_a_chaotic_forward_is_flagged_where_50_digits_say_it_leaves_the_tolerance() -> None:
    spec = _tanh(4.0, "kaiming_uniform")
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    actual = _mpmath_errors(spec, params, ref)
    fidelity = check_reference(spec, params, ref)
    first_actual = next(t for t, e in enumerate(actual, start=1) if e > TOLERANCE)
    assert not fidelity.trusted and fidelity.first_untrusted_layer is not None
    assert first_actual - 6 <= fidelity.first_untrusted_layer <= first_actual  # on the safe side, a few layers early
    # the estimate follows the actual error's growth within 1.5 decades wherever that is above rounding
    for est, act in zip(fidelity.log10_relative_errors, actual, strict=True):
        if 1e-13 < act < 0.1:
            assert est is not None and abs(est - math.log10(act)) < 1.5


@pytest.mark.parametrize("scale,init", [(1.0, "xavier_normal"), (0.5, "kaiming_uniform")])
def test_an_ordered_forward_is_trusted_and_50_digits_agree(scale: float, init: str) -> None:
    spec = _tanh(scale, init, depth=30)
    params = make_parameters(spec)
    ref = run_reference(spec, params)
    fidelity = check_reference(spec, params, ref)
    assert fidelity.trusted and fidelity.first_untrusted_layer is None
    assert max(_mpmath_errors(spec, params, ref)) < TOLERANCE * 1e-4


def test_the_report_says_where_the_reference_stops_being_trustworthy() -> None:
    chaotic = analyze(_tanh(4.0, "kaiming_uniform"))
    fid = chaotic.reference_fidelity
    assert fid is not None and fid.first_untrusted_layer is not None
    assert len(fid.log10_relative_errors) == 60
    assert any(f"chaotic from layer {fid.first_untrusted_layer} on" in n for n in chaotic.runtime.notes)
    calm = analyze(make_spec(layers={"depth": 20, "width": 64}, activation="relu"))
    assert calm.reference_fidelity is not None and calm.reference_fidelity.trusted
    assert not any("chaotic" in n for n in calm.runtime.notes)
