"""Admission by predicted time: every spec the limits admit finishes inside the request deadline.

Hypothesis draws specs across the whole space the limits allow (depth up to max_depth, widths, batch, method,
power steps, probes, singular values, dtype, activation, reruns), shrinks each draw until a small deadline
admits it, runs it and checks that it finished inside that deadline. It checks CPU time, not wall time: on a
machine shared with other work the wall time of anything grows without bound, while the CPU time an analysis
takes is what the prediction is about. The margin (ADMIT_MARGIN) covers the rest of the difference.
"""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.limits import ADMIT_MARGIN, Limits
from schemas.spec import check_limits
from service.config import Settings
from service.engine import analyze
from service.engine.cost import charged_gflop, estimate_cost, predict_time
from service.engine.spec import ACTIVATIONS, DTYPES, JacobianOptions, ModelSpec

DEADLINE_S = 2.0
LIMITS = Limits(max_seconds=ADMIT_MARGIN * DEADLINE_S)


def _log_int(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers spread evenly in log scale: small and large values alike."""
    return st.floats(math.log(low), math.log(high)).map(lambda x: max(low, min(high, round(math.exp(x)))))


@st.composite
def admitted_specs(draw: st.DrawFn) -> ModelSpec:
    lim = Limits()
    depth = draw(_log_int(1, lim.max_depth))
    width, input_dim, top = (draw(_log_int(1, lim.max_width)) for _ in range(3))
    spec = ModelSpec(
        widths=(input_dim,) + (width,) * (depth - 1) + (draw(st.sampled_from([width, top])),),
        activations=(draw(st.sampled_from(ACTIVATIONS)),) * depth,
        dtype=draw(st.sampled_from(DTYPES)),
        batch_size=draw(_log_int(1, lim.max_batch_size)),
        verify_recommendations=draw(st.booleans()),
        jacobian=JacobianOptions(
            method=draw(st.sampled_from(["auto", "exact", "estimate"])),
            power_iterations=draw(st.sampled_from([0, 1, 2, 8, 30, lim.max_power_iterations])),
            probes=draw(_log_int(2, lim.max_probes)),
            singular_values=draw(st.sampled_from(["auto", "all", "none"])),
        ),
    )
    return _shrink_until_admitted(spec)


def _shrink_until_admitted(spec: ModelSpec) -> ModelSpec:
    """Halve depth, batch, widths, power steps and probes in turn until the limits admit the spec: the draws
    that matter most lie just inside the limit."""
    for round_ in range(200):
        if not check_limits(spec, LIMITS):
            return spec
        jac = spec.jacobian
        match round_ % 5:
            case 0 if spec.depth > 1:
                d = spec.depth // 2
                spec = dataclasses.replace(
                    spec, widths=spec.widths[:d] + spec.widths[-1:], activations=spec.activations[:d]
                )
            case 1:
                spec = dataclasses.replace(spec, batch_size=max(1, spec.batch_size // 2))
            case 2:
                spec = dataclasses.replace(spec, widths=tuple(max(2, n // 2) if n > 2 else n for n in spec.widths))
            case 3:
                spec = dataclasses.replace(
                    spec, jacobian=dataclasses.replace(jac, power_iterations=jac.power_iterations // 2)
                )
            case 4:
                spec = dataclasses.replace(spec, jacobian=dataclasses.replace(jac, probes=max(2, jac.probes // 2)))
    raise AssertionError(f"never admitted: {spec}")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(spec=admitted_specs())
def test_every_admitted_spec_finishes_inside_the_deadline(spec: ModelSpec) -> None:
    predicted = predict_time(spec).seconds
    start = time.process_time()
    analyze(spec)
    seconds = time.process_time() - start
    assert seconds <= DEADLINE_S, f"{seconds:.2f} s CPU (predicted {predicted:.2f} s) for {spec}"


def _server_limits() -> Limits:
    """What `make run` admits by on a 2-core machine: 2 workers of one torch thread, the default deadline."""
    return Settings.from_env({}, cpus=2).limits


def test_the_server_admits_by_its_deadline_with_the_margin() -> None:
    settings = Settings.from_env({}, cpus=2)
    assert settings.limits.max_seconds == pytest.approx(ADMIT_MARGIN * settings.server.request_deadline)
    own = Settings.from_env({"GRADSTAB_MAX_SECONDS": "7"}, cpus=2)
    assert own.limits.max_seconds == 7


def test_the_deep_narrow_spec_that_held_a_worker_to_the_deadline_is_refused() -> None:
    """issue 20: depth 2000, width 2, batch 1024, exact, 100 power steps: 107 GFLOP, admitted, and it ran past
    the 108 s deadline. Its power steps on 2000 layers × 1024 small products are what takes the time."""
    spec = ModelSpec(
        widths=(2,) * 2001,
        activations=("relu",) * 2000,
        batch_size=1024,
        jacobian=JacobianOptions(method="exact", power_iterations=100),
    )
    limits = _server_limits()
    assert estimate_cost(spec).gflop < limits.max_gflop  # the GFLOP limit alone admits it
    errors = check_limits(spec, limits)
    (message,) = errors["jacobian"]
    assert "predicted time (s)" in message and "max_seconds" in message and "GRADSTAB_MAX_SECONDS" in message
    assert "jacobian.power_iterations" in message and "POST /v1/jobs" in message
    assert predict_time(spec).largest() == "power_steps"


def test_an_estimate_whose_sweeps_grow_with_depth_squared_is_refused() -> None:
    spec = ModelSpec(
        widths=(1,) * 2001,
        activations=("relu",) * 2000,
        jacobian=JacobianOptions(method="estimate", power_iterations=100),
    )
    (message,) = check_limits(spec, _server_limits())["jacobian"]
    assert "method exact" in message


def test_the_work_budget_charges_predicted_time() -> None:
    """GEMM-bound specs are charged about their GFLOP; deep narrow ones their fixed costs as well."""
    wide = ModelSpec(widths=(512,) * 11, activations=("relu",) * 10, batch_size=8)
    narrow = ModelSpec(
        widths=(1,) * 2001,
        activations=("relu",) * 2000,
        jacobian=JacobianOptions(power_iterations=100, singular_values="all"),
    )
    assert estimate_cost(wide).gflop <= charged_gflop(wide) <= 1.5 * estimate_cost(wide).gflop
    assert charged_gflop(narrow) > 100 * estimate_cost(narrow).gflop
