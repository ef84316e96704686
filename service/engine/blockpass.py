"""The forward and backward pass of a residual/normalised network in the requested dtype (`architecture.ops`).

The same rules as the plain pass (`network.run_pass`): weights and inputs as drawn, float16 on the CPU emulated by
rounding every value a native pass holds once (here also each normalisation's output, the scaled branch and each
sum h_in + s·f, computed in float64 and rounded), the loss scale applied to ℓ. Normalisation layers are torch's
functional forms (layer_norm, rms_norm, batch_norm with the batch's statistics) with γ = 1, β = 0 and ε = NORM_EPS;
in emulated float16 they run in float64 and their output is rounded once, as a native kernel that accumulates in
float32 rounds its output once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .architecture import architecture_of, ops
from .network import Parameters, PassResult, PassState, finish_pass, start_pass
from .spec import NORM_EPS, ModelSpec

Tensor = torch.Tensor


def normalize(kind: str, h: Tensor) -> Tensor:
    """γ = 1, β = 0: layernorm and rmsnorm over a sample's units, batchnorm over the batch per unit (training mode:
    the batch's own mean and biased variance)."""
    n = h.shape[-1]
    if kind == "layernorm":
        return F.layer_norm(h, (n,), eps=NORM_EPS)
    if kind == "rmsnorm":
        return F.rms_norm(h, (n,), eps=NORM_EPS)
    return F.batch_norm(h, None, None, training=True, eps=NORM_EPS)


def run_block_pass(
    spec: ModelSpec, params: Parameters, device: torch.device, emulate_float16: bool = True
) -> PassResult:
    """The pass in the spec's dtype; emulate_float16=False runs float16 natively on the CPU too (tests compare)."""
    st, h = start_pass(spec, params, device, emulate_float16)
    outputs: list[Tensor] = []

    def mark(h_t: Tensor) -> None:
        h_t.retain_grad()
        outputs.append(h_t)

    h = block_forward(spec, st, h, mark)
    return finish_pass(spec, params, device, st, h, outputs)


def block_forward(spec: ModelSpec, st: PassState, h: Tensor, mark: Callable[[Tensor], None] | None = None) -> Tensor:
    """h^d from the input h through `architecture.ops` with the state's weights (the analysis's pass and the training
    probe's steps share it; a plain spec's ops are linear, act, mark per layer). mark(h^t) is called at each mark."""
    arch = architecture_of(spec)
    kind = arch.normalization.kind
    branch_scale = arch.residual.branch_scale if arch.residual is not None else 1.0
    saved: list[Tensor] = []
    for op in ops(spec):
        if op.kind == "fork":
            saved.append(h)
        elif op.kind == "norm":
            h = st.rnd(normalize(kind, st.rnd(h)))
        elif op.kind == "linear":  # with its activation, which the next op marks
            h = st.layer(h, op.layer, spec.activations[op.layer - 1])
        elif op.kind == "scale":
            h = st.rnd(h * branch_scale) if branch_scale != 1.0 else h
        elif op.kind == "add":
            h = st.rnd(saved.pop() + st.rnd(h))
        elif op.kind == "mark" and mark is not None:  # h is h^t
            mark(h)
    return h
