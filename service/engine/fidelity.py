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
    xi = torch.randn(params.x.shape, generator=gen, dtype=params.x.dtype).to(params.x.device)  # drawn on the host
    moved = forward(spec, dataclasses.replace(params, x=params.x * (1.0 + PERTURBATION * xi), _converted={}))
    return summarise(_relative_errors(ref.layers, moved.layers))


def summarise(errors: list[float]) -> ReferenceFidelity:
    """The fidelity report from the relative error per layer (or per step of a recurrent reference)."""
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


def _relative_errors(a_layers: list[LayerReference], b_layers: list[LayerReference]) -> list[float]:
    """Per layer, max over samples of ‖h_a − h_b‖/‖h_a‖ and ‖σ'_a − σ'_b‖/‖σ'_a‖ (1 where one side is 0 and the
    other is not): for every layer of one width at once (per-layer operations would cost more than the
    arithmetic)."""
    out = [0.0] * len(a_layers)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, lr in enumerate(a_layers):
        groups.setdefault(tuple(lr.h_dir.shape), []).append(i)
    for idx in groups.values():
        a_dir, b_dir = (torch.stack([layers[i].h_dir for i in idx]) for layers in (a_layers, b_layers))  # (k, B, n)
        a_s, b_s = (torch.stack([layers[i].h_log_scale for i in idx]) for layers in (a_layers, b_layers))  # (k, B)
        a_sp, b_sp = (torch.stack([layers[i].sigma_prime for i in idx]) for layers in (a_layers, b_layers))
        # h = e^s·ĥ: ‖h_a − h_b‖/‖h_a‖ = ‖ĥ_a − e^{s_b − s_a}·ĥ_b‖; 0 where both are 0, 1 where only h_a is
        a_zero, b_zero = torch.isneginf(a_s), torch.isneginf(b_s)
        ratio = torch.exp(torch.where(a_zero | b_zero, -math.inf, b_s - a_s).clamp(max=690.0))
        h_err = torch.linalg.vector_norm(a_dir - ratio[..., None] * b_dir, dim=-1)
        h_err = torch.where(a_zero, (~b_zero).double(), h_err)
        sp_norm = torch.linalg.vector_norm(a_sp, dim=-1)
        sp_diff = torch.linalg.vector_norm(a_sp - b_sp, dim=-1)
        sp_err = torch.where(sp_norm > 0, sp_diff / torch.where(sp_norm > 0, sp_norm, 1.0), (sp_diff > 0).double())
        worst = torch.maximum(h_err, sp_err).amax(dim=1).tolist()
        for i, e in zip(idx, worst, strict=True):
            out[i] = e
    return out


def reference_note(fidelity: ReferenceFidelity) -> str | None:
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
