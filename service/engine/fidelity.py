"""How far the float64 reference forward can be trusted: the same forward from inputs moved by one rounding.

The reference rounds at every layer like any float64 computation. Where the network is chaotic (tanh with a
large weight scale: two inputs that differ a little diverge exponentially with depth) those roundings grow
too, and past some layer the reference's h^t and σ'(z^t) are those of a network within rounding of this one,
not of this one (issue 24: a 50-digit forward differs by 1e-3 at layer 50, by 0.5 at layer 60). A second
reference from x·(1 + PERTURBATION·ξ), ξ ~ N(0, 1) seeded, about as far from x as a layer's own rounding, grows
the way those roundings do: its relative distance from the first, layer by layer, estimates the reference's
own error (tests/engine/test_fidelity.py checks it against a 50-digit mpmath forward). From the first layer
where it passes TOLERANCE on, σ', χ, the activation statistics and every product through that layer are not
the exact network's to TOLERANCE (statistics such as the growth per layer stay representative).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from .network import Parameters
from .reference import LayerReference, Reference, run_reference
from .report import ReferenceFidelity
from .spec import ModelSpec

Tensor = torch.Tensor
# About 4 float64 roundings of the input (2^-52 each): the size of the error one layer's GEMM adds.
PERTURBATION = 2.0**-50
# The relative error of h^t or σ'(z^t) from which a layer's reference values are called untrustworthy: the
# accuracy the report's log10 figures are stated to elsewhere (the float32 chain's 1e-6).
TOLERANCE = 1e-6


def check_reference(
    spec: ModelSpec,
    params: Parameters,
    ref: Reference,
    forward: Callable[[ModelSpec, Parameters], Reference] = run_reference,
) -> ReferenceFidelity:
    """Rerun the reference (`forward`: the plain MLP's, or a block network's) from perturbed inputs and compare it
    with `ref`, layer by layer."""
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 2)
    xi = torch.randn(params.x.shape, generator=gen, dtype=params.x.dtype)
    moved = forward(spec, dataclasses.replace(params, x=params.x * (1.0 + PERTURBATION * xi), _converted={}))
    errors = [_relative_error(a, b) for a, b in zip(ref.layers, moved.layers, strict=True)]
    first = next((t for t, e in enumerate(errors, start=1) if e > TOLERANCE), None)
    worst = max(errors)
    return ReferenceFidelity(
        method="perturbed_forward",
        perturbation=PERTURBATION,
        tolerance=TOLERANCE,
        trusted=first is None,
        first_untrusted_layer=first,
        log10_max_relative_error=math.log10(worst) if worst > 0 else None,
        log10_relative_errors=[math.log10(e) if e > 0 else None for e in errors],
    )


def _relative_error(a: LayerReference, b: LayerReference) -> float:
    """max over samples of ‖h_a − h_b‖/‖h_a‖ and ‖σ'_a − σ'_b‖/‖σ'_a‖ (1 where one side is 0 and the other is not)."""
    # h = e^s·ĥ: ‖h_a − h_b‖/‖h_a‖ = ‖ĥ_a − e^{s_b − s_a}·ĥ_b‖, with 0 where both are 0 and 1 where one is
    both_zero = torch.isneginf(a.h_log_scale) & torch.isneginf(b.h_log_scale)
    ratio = torch.exp(torch.where(both_zero, 0.0, b.h_log_scale - a.h_log_scale)).nan_to_num(nan=0.0, posinf=1e300)
    h_err = torch.linalg.vector_norm(a.h_dir - ratio[:, None] * b.h_dir, dim=1)
    h_err = torch.where(both_zero, 0.0, torch.where(torch.isneginf(a.h_log_scale), 1.0, h_err))
    sp_norm = torch.linalg.vector_norm(a.sigma_prime, dim=1)
    sp_diff = torch.linalg.vector_norm(a.sigma_prime - b.sigma_prime, dim=1)
    sp_err = torch.where(sp_norm > 0, sp_diff / torch.where(sp_norm > 0, sp_norm, 1.0), (sp_diff > 0).double())
    return float(torch.maximum(h_err, sp_err).max())


def note(fidelity: ReferenceFidelity) -> str | None:
    """The runtime note where the reference is not trusted throughout."""
    t = fidelity.first_untrusted_layer
    if t is None:
        return None
    return (
        f"the float64 reference forward is chaotic from layer {t} on: one rounding of the input grows there past "
        f"{fidelity.tolerance:g} relative (to at most 10^{fidelity.log10_max_relative_error:.1f}), so "
        "σ', χ and the activation statistics of those layers, and every Jacobian product through them, are those "
        "of a network within rounding of this one (their statistics, such as the growth per layer, stay "
        "representative; reference_fidelity has the error per layer)"
    )
