"""Build the MLP from a spec and run its forward and backward pass in the requested dtype.

h^t = σ_t(W^t h^{t-1} [+ b^t]), t = 1..d. Weights and inputs are drawn on the CPU from one
seeded generator (same numbers on every device and x86 CPU: float64 draws through kernels that round
the same on every instruction set), kept in float64 after rounding to the pass dtype. On the CPU, float16 is
emulated (native CPU float16 matmul is ~50× slower): every quantity a native float16 pass holds
— z^t, h^t, ∂ℓ/∂h^t (∂ℓ/∂h^d included), ∂ℓ/∂z^t, ∂ℓ/∂W^t, the loss — is rounded to float16 once,
from float64 arithmetic: products of float16 numbers are exact in float64 and a dot product of
them is exact while its terms span less than 2^31, so one rounding to float16 decides each value
whatever order the BLAS kernel sums in (thread count, ISA path, MKL_CBWR). sigmoid's and tanh's
σ' are taken from the rounded output, as the native backward does (σ' = y(1−y), 1−y²). On
CUDA float16 is native (float32 accumulation in an order the GPU library picks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .activations import get as get_activation
from .errors import SpecError
from .spec import ModelSpec

Tensor = torch.Tensor

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def resolve_device(requested: str) -> torch.device:
    """auto → cuda where present; cuda where absent is the client's error, not ours."""
    if requested == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise SpecError("device", "device 'cuda' was asked for, but this server has no CUDA device; use cpu or auto.")
    return torch.device("cuda" if available else "cpu")


@dataclass
class Parameters:
    """Weights W^t (n_t, n_{t-1}) in float64 (already rounded to the pass dtype) and the inputs."""

    weights: list[Tensor]
    biases: list[Tensor | None]
    x: Tensor  # (batch, n_0)
    labels: Tensor | None  # (batch,) for cross_entropy
    _converted: dict[tuple[torch.dtype, str], list[Tensor]] = field(default_factory=dict, repr=False)

    def weights_as(self, dtype: torch.dtype, device: torch.device) -> list[Tensor]:
        """The weights in another dtype/device, converted once per analysis (the pass and the chain share it)."""
        key = (dtype, str(device))
        if key not in self._converted:
            self._converted[key] = [w.to(device=device, dtype=dtype) for w in self.weights]
        return self._converted[key]


def _init_weight(w: Tensor, init: str, scale: float, gen: torch.Generator) -> None:
    """Fill w (float64) in place. Uniform inits are drawn as U(0, 1) and mapped by exact elementwise ops:
    torch's own uniform_(a, b) rounds a + u(b − a) differently on AVX2 and scalar kernels."""
    init_ = torch.nn.init
    n_out, n_in = w.shape
    bounds = {
        "uniform": scale,
        "xavier_uniform": scale * math.sqrt(6.0 / (n_in + n_out)),
        "kaiming_uniform": scale * math.sqrt(2.0) * math.sqrt(3.0 / n_in),
    }
    if init in bounds:
        w.uniform_(0.0, 1.0, generator=gen).mul_(2.0).sub_(1.0).mul_(bounds[init])
    elif init == "normal":
        init_.normal_(w, 0.0, scale, generator=gen)
    elif init == "xavier_normal":
        init_.xavier_normal_(w, gain=scale, generator=gen)
    elif init == "kaiming_normal":
        init_.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        w.mul_(scale)
    elif init == "orthogonal":
        init_.orthogonal_(w, gain=scale, generator=gen)
    else:  # the schema refuses anything else
        raise SpecError("init", f"unknown init {init!r}")


def weight_variance(init: str, scale: float, fan_in: int, fan_out: int) -> float:
    """Var(W_ij) that the init draws from: the σ_w²/fan_in of mean-field theory."""
    if init == "normal":
        return scale**2
    if init == "uniform":
        return scale**2 / 3.0
    if init in ("xavier_normal", "xavier_uniform"):
        return scale**2 * 2.0 / (fan_in + fan_out)
    if init in ("kaiming_normal", "kaiming_uniform"):
        return scale**2 * 2.0 / fan_in
    # orthogonal: rows (or columns) of unit norm, so Var = gain² / max(fan_in, fan_out)
    return scale**2 / max(fan_in, fan_out)


def make_parameters(spec: ModelSpec) -> Parameters:
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)
    store = TORCH_DTYPES[spec.dtype]
    weights: list[Tensor] = []
    biases: list[Tensor | None] = []
    for n_in, n_out in zip(spec.widths[:-1], spec.widths[1:], strict=True):
        # float64 draws: torch's float32 normal_ and uniform_ (and float64 uniform_(a, b)) take vectorised
        # kernels on AVX2 CPUs and scalar ones elsewhere that round differently, so the same seed gave
        # different weights on different machines (ATEN_CPU_CAPABILITY); see _init_weight.
        w = torch.empty(n_out, n_in, dtype=torch.float64)
        _init_weight(w, spec.init, spec.weight_scale, gen)
        weights.append(_round_finite(w.double(), store))
        biases.append(torch.zeros(n_out, dtype=torch.float64) if spec.bias else None)
    x = torch.randn(spec.batch_size, spec.widths[0], generator=gen, dtype=torch.float64) * spec.input_scale
    x = _round_finite(x, store)
    labels = None
    if spec.loss == "cross_entropy":
        labels = torch.randint(0, spec.widths[-1], (spec.batch_size,), generator=gen)
    return Parameters(weights, biases, x, labels)


def _round_finite(v: Tensor, store: torch.dtype) -> Tensor:
    """v rounded to the pass dtype, kept in float64; entries the dtype cannot hold keep their exact value.

    The pass re-rounds them (to ±inf, and reports the overflow); the exact reference needs the
    network as drawn.
    """
    rounded = v.to(store).to(torch.float64)
    return torch.where(torch.isfinite(rounded), rounded, v)


class _Round(torch.autograd.Function):
    """Round to a narrower dtype and back, forward and backward: float16 emulated in float32."""

    @staticmethod
    def forward(ctx, x: Tensor, dtype: torch.dtype) -> Tensor:  # type: ignore[override]
        ctx.narrow = dtype
        return x.to(dtype).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad.to(ctx.narrow).to(grad.dtype), None


class _RoundedOutputActivation(torch.autograd.Function):
    """sigmoid/tanh in emulated float16: y rounded, σ' from the rounded y as float16's backward forms it."""

    @staticmethod
    def forward(ctx, z: Tensor, name: str, dtype: torch.dtype) -> Tensor:  # type: ignore[override]
        y = (torch.sigmoid(z) if name == "sigmoid" else torch.tanh(z)).to(dtype).to(z.dtype)
        ctx.save_for_backward(y)
        ctx.name = name
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        sigma_prime = y * (1.0 - y) if ctx.name == "sigmoid" else 1.0 - y * y
        return grad * sigma_prime, None, None


@dataclass
class PassResult:
    """What the pass in the requested dtype produced (tensors in the compute dtype, detached).

    outputs[t-1] = h^t, output_grads[t-1] = S·∂ℓ/∂h^t, weight_grads[t-1] = S·∂ℓ/∂W^t with S the
    spec's loss_scale (1 unless asked for).
    """

    loss: float
    outputs: list[Tensor]
    output_grads: list[Tensor]
    weight_grads: list[Tensor]
    emulated: bool


def run_pass(spec: ModelSpec, params: Parameters, device: torch.device, emulate_float16: bool = True) -> PassResult:
    """The pass in the spec's dtype; emulate_float16=False runs float16 natively on the CPU too (tests compare)."""
    target = TORCH_DTYPES[spec.dtype]
    emulated = target == torch.float16 and device.type == "cpu" and emulate_float16
    compute = torch.float64 if emulated else target

    def rnd(t: Tensor) -> Tensor:
        return _Round.apply(t, target) if emulated else t

    weights = [w.detach().clone().requires_grad_(True) for w in params.weights_as(compute, device)]
    biases = [
        None if b is None else b.to(device=device, dtype=compute, copy=True).requires_grad_(True) for b in params.biases
    ]
    h = params.x.to(device=device, dtype=compute)
    outputs: list[Tensor] = []
    for w, b, name in zip(weights, biases, spec.activations, strict=True):
        # rnd(h): a no-op forward (h is already representable) that rounds ∂ℓ/∂h coming out of the matmul.
        z = rnd(rnd(h) @ w.T)
        if b is not None:
            z = rnd(z + b)
        if emulated and name in ("sigmoid", "tanh"):
            h = _RoundedOutputActivation.apply(z, name, target)
        else:
            h = rnd(get_activation(name).fn(z))
        h.retain_grad()
        outputs.append(h)
    # rnd(h): rounds ∂ℓ/∂h^d, which a native pass holds in the dtype, before it reaches h^d
    loss = rnd(_loss(spec.loss, rnd(h), params.labels, device))
    # Loss scaling (mixed precision's fix for float16 underflow): backpropagate S·ℓ in the dtype;
    # the gradients stay scaled here (that is where the dtype's range bites) and are unscaled in
    # float64 for the statistics, as torch.amp's GradScaler unscales them in float32.
    (rnd(loss * spec.loss_scale) if spec.loss_scale != 1.0 else loss).backward()
    grads = []
    for w in weights:
        g = w.grad
        assert g is not None
        grads.append(g.to(target).to(compute) if emulated else g)
    return PassResult(
        loss=float(loss.detach().double()),
        outputs=[o.detach() for o in outputs],
        output_grads=[torch.zeros_like(o) if o.grad is None else o.grad.detach() for o in outputs],
        weight_grads=[g.detach() for g in grads],
        emulated=emulated,
    )


def _loss(kind: str, h: Tensor, labels: Tensor | None, device: torch.device) -> Tensor:
    if kind == "sum":
        return h.sum()
    if kind == "mean":
        return h.mean()
    if kind == "mse":
        return F.mse_loss(h, torch.zeros_like(h))
    assert labels is not None
    return F.cross_entropy(h, labels.to(device))


def top_gradient(kind: str, h_top: Tensor, labels: Tensor | None) -> Tensor:
    """∂ℓ/∂h^d in float64 from the exact top activations, per sample (batch, n_d)."""
    batch, n_d = h_top.shape
    if kind == "sum":
        return torch.ones_like(h_top)
    if kind == "mean":
        return torch.full_like(h_top, 1.0 / (batch * n_d))
    if kind == "mse":
        return 2.0 * h_top / (batch * n_d)
    assert labels is not None
    probs = torch.softmax(h_top, dim=1)
    onehot = F.one_hot(labels, n_d).to(h_top.dtype)
    return (probs - onehot) / batch


def log10(x: float) -> float:
    return math.log10(x) if x > 0 and math.isfinite(x) else float("nan")
