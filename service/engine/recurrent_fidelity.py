"""The perturbed-forward self-check of `fidelity` for a recurrent reference: the reference again from inputs moved by
one rounding, compared step by step (the top layer's h_t and its cell's derivative values), so a chaotic recurrence
says from which step its float64 reference is a nearby network's rather than this one's."""

from __future__ import annotations

import dataclasses

import torch

from .activations import get as get_activation
from .fidelity import PERTURBATION, _relative_errors, summarise
from .products import unit_rows
from .recurrent import GATE_NAMES, RecurrentParameters
from .recurrent_ref import RecurrentReference, run_recurrent_reference
from .report import ReferenceFidelity
from .spec import ModelSpec

Tensor = torch.Tensor


@dataclasses.dataclass
class _Step:
    """What `fidelity._relative_errors` reads of a layer, for one step: h as a unit direction and ln scale, and σ'
    (rnn: σ'(z); lstm, gru: the gates and the candidate, whose changes move every product)."""

    h_dir: Tensor
    h_log_scale: Tensor
    sigma_prime: Tensor


def _steps(spec: ModelSpec, ref: RecurrentReference) -> list[_Step]:
    rec = spec.recurrent
    assert rec is not None
    out = []
    for t, row in enumerate(ref.steps):
        d, ln = unit_rows(ref.top_h[t])
        cache = row[-1].cache
        if rec.cell == "rnn":
            sp = get_activation(spec.activations[0]).prime(cache["z"])
        else:
            sp = torch.cat([cache[name] for name in GATE_NAMES[rec.cell]], dim=-1)
        out.append(_Step(d, ln + ref.top_log[t], sp))
    return out


def check_recurrent_reference(
    spec: ModelSpec, params: RecurrentParameters, ref: RecurrentReference
) -> ReferenceFidelity:
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 2)
    xi = torch.randn(params.x.shape, generator=gen, dtype=params.x.dtype)
    moved = run_recurrent_reference(spec, dataclasses.replace(params, x=params.x * (1.0 + PERTURBATION * xi)))
    return summarise(_relative_errors(_steps(spec, ref), _steps(spec, moved)))  # type: ignore[arg-type]
