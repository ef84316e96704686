"""The forward and backward pass of a residual/normalised network in the requested dtype (`architecture.ops`).

The same rules as the plain pass (`network.run_pass`): weights and inputs as drawn, float16 on the CPU emulated by
rounding every value a native pass holds once (here also each normalisation's output, the scaled branch and each
sum h_in + s·f, computed in float64 and rounded), the loss scale applied to ℓ. Normalisation layers are torch's
functional forms (layer_norm, rms_norm, batch_norm with the batch's statistics) with γ = 1, β = 0 and ε = NORM_EPS;
in emulated float16 they run in float64 and their output is rounded once, as a native kernel that accumulates in
float32 rounds its output once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .activations import get as get_activation
from .architecture import architecture_of, ops
from .network import TORCH_DTYPES, Parameters, PassResult, _loss, _Round, _RoundedOutputActivation
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
    target = TORCH_DTYPES[spec.dtype]
    emulated = target == torch.float16 and device.type == "cpu" and emulate_float16
    compute = torch.float64 if emulated else target
    arch = architecture_of(spec)
    kind = arch.normalization.kind
    branch_scale = arch.residual.branch_scale if arch.residual is not None else 1.0

    def rnd(t: Tensor) -> Tensor:
        return _Round.apply(t, target) if emulated else t

    weights = [w.detach().requires_grad_(True) for w in params.weights_as(compute, device)]
    biases = [
        None if b is None else b.to(device=device, dtype=compute, copy=True).requires_grad_(True) for b in params.biases
    ]
    h = params.x.to(device=device, dtype=compute)
    outputs: list[Tensor] = []
    saved: list[Tensor] = []
    for op in ops(spec):
        t = op.layer
        if op.kind == "fork":
            saved.append(h)
        elif op.kind == "norm":
            h = rnd(normalize(kind, rnd(h)))
        elif op.kind == "linear":
            h = rnd(rnd(h) @ weights[t - 1].T)
            b = biases[t - 1]
            if b is not None:
                h = rnd(h + b)
        elif op.kind == "act":
            name = spec.activations[t - 1]
            if emulated and name in ("sigmoid", "tanh"):
                h = _RoundedOutputActivation.apply(h, name, target)
            else:
                h = rnd(get_activation(name).fn(h))
        elif op.kind == "scale":
            h = rnd(h * branch_scale) if branch_scale != 1.0 else h
        elif op.kind == "add":
            h = rnd(saved.pop() + rnd(h))
        else:  # mark: h is h^t
            h.retain_grad()
            outputs.append(h)
    loss = rnd(_loss(spec.loss, rnd(h), params.labels, device))
    (rnd(loss * spec.loss_scale) if spec.loss_scale != 1.0 else loss).backward()
    grads = []
    for w in weights:
        g = w.grad if w.grad is not None else torch.zeros_like(w)
        grads.append(g.to(target).to(compute) if emulated else g)
    return PassResult(
        loss=float(loss.detach().double()),
        outputs=[o.detach() for o in outputs],
        output_grads=[torch.zeros_like(o) if o.grad is None else o.grad.detach() for o in outputs],
        weight_grads=[g.detach() for g in grads],
        emulated=emulated,
    )
