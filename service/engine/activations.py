"""The ten activations: σ for the pass, σ' in closed form for the Jacobians, and their shape.

σ' is written out (not taken from autograd) because the Jacobian chain needs it for every
unit of every layer at float64, from pre-activations that may be rescaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

LEAKY_SLOPE = 0.01
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _gelu_prime(z: Tensor) -> Tensor:
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _silu_prime(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _sigmoid_prime(z: Tensor) -> Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 - s)


def _elu_prime(z: Tensor) -> Tensor:
    return torch.where(z > 0, torch.ones_like(z), torch.exp(torch.clamp(z, max=0.0)))


def _selu_prime(z: Tensor) -> Tensor:
    neg = SELU_ALPHA * torch.exp(torch.clamp(z, max=0.0))
    return SELU_SCALE * torch.where(z > 0, torch.ones_like(z), neg)


@dataclass(frozen=True)
class Activation:
    """σ, σ', and what the diagnosis needs to know about the shape of σ'.

    homogeneous: σ(cz) = cσ(z) for c > 0, so a rescaled forward gives the same σ'.
    kind: linear | relu_like (σ' = 0 on a half-line: dead units) | saturating (σ' → 0 on
    both sides: sigmoid, tanh) | smooth (relu-like but smooth: σ' → 0 or small for z < 0).
    slopes: (σ'(+∞), σ'(−∞)), the limits used where |z| leaves float64's range.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    prime: Callable[[Tensor], Tensor]
    homogeneous: bool
    kind: str
    peak_prime: float  # max σ'(z) over z: 1/4 for sigmoid, 1 for tanh
    slopes: tuple[float, float]


ACTIVATION_TABLE: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", lambda z: z, torch.ones_like, True, "linear", 1.0, (1.0, 1.0)),
        Activation("relu", F.relu, lambda z: (z > 0).to(z.dtype), True, "relu_like", 1.0, (1.0, 0.0)),
        Activation(
            "leaky_relu",
            lambda z: F.leaky_relu(z, LEAKY_SLOPE),
            lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE)),
            True,
            "relu_like",
            1.0,
            (1.0, LEAKY_SLOPE),
        ),
        Activation("sigmoid", torch.sigmoid, _sigmoid_prime, False, "saturating", 0.25, (0.0, 0.0)),
        Activation("tanh", torch.tanh, lambda z: 1.0 - torch.tanh(z) ** 2, False, "saturating", 1.0, (0.0, 0.0)),
        Activation("gelu", F.gelu, _gelu_prime, False, "smooth", 1.1289, (1.0, 0.0)),
        Activation("silu", F.silu, _silu_prime, False, "smooth", 1.0998, (1.0, 0.0)),
        Activation("elu", F.elu, _elu_prime, False, "smooth", 1.0, (1.0, 0.0)),
        Activation("selu", F.selu, _selu_prime, False, "smooth", SELU_SCALE * SELU_ALPHA, (SELU_SCALE, 0.0)),
        Activation("softplus", F.softplus, torch.sigmoid, False, "smooth", 1.0, (1.0, 0.0)),
    )
}


def get(name: str) -> Activation:
    return ACTIVATION_TABLE[name]


def limit_prime(act: Activation, z: Tensor) -> Tensor:
    """σ' where |z| is astronomically large: the slope of σ's asymptote on that side."""
    pos, neg = act.slopes
    return torch.where(z > 0, torch.full_like(z, pos), torch.full_like(z, neg))
