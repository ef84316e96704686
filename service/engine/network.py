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

import hashlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import overload

import torch
import torch.nn.functional as F

from .activations import get as get_activation
from .cost import AUTO_CUDA_MIN_GFLOP
from .draws import INITS, draw_weight
from .errors import SpecError
from .spec import ModelSpec

Tensor = torch.Tensor
# Weight draws run in parallel threads above this many weights in all (below, thread start-up costs more).
PARALLEL_DRAW_MIN = 1 << 20

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def resolve_device(requested: str, work_gflop: float = float("inf")) -> torch.device:
    """auto → the current CUDA device where present and the work pays for it; cuda where absent is the
    client's error, not ours.

    An analysis of less than AUTO_CUDA_MIN_GFLOP is launch-bound on a GPU (hundreds of small kernels)
    and finishes sooner on the CPU, so auto keeps it there.
    """
    if requested == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise SpecError("device", "device 'cuda' was asked for, but this server has no CUDA device; use cpu or auto.")
    if not available or (requested == "auto" and work_gflop < AUTO_CUDA_MIN_GFLOP):
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


class Float64Weights(Sequence[Tensor]):
    """The weights as float64 tensors, converted one layer at a time on access.

    The draws are held in their compact dtype (float32, or float64 for orthogonal): a float64 copy of
    every layer at once would double the host memory of a wide net (54 GB for 100 layers of 8192²)
    and cost a pass over it, while the reference forward reads one layer at a time.
    """

    def __init__(self, compact: list[Tensor]) -> None:
        self._compact = compact

    def __len__(self) -> int:
        return len(self._compact)

    @overload
    def __getitem__(self, index: int) -> Tensor: ...
    @overload
    def __getitem__(self, index: slice) -> list[Tensor]: ...
    def __getitem__(self, index: int | slice) -> Tensor | list[Tensor]:
        if isinstance(index, slice):
            return [w.double() for w in self._compact[index]]
        return self._compact[index].double()


@dataclass
class Parameters:
    """Weights W^t (n_t, n_{t-1}) as drawn and rounded to the pass dtype (`weights`: float64 per layer on access),
    the inputs and the labels."""

    compact_weights: list[Tensor]  # float32 (float64 for orthogonal), values already representable in the pass dtype
    biases: list[Tensor | None]
    x: Tensor  # (batch, n_0)
    labels: Tensor | None  # (batch,) for cross_entropy
    _converted: dict[tuple[torch.dtype, str], list[Tensor]] = field(default_factory=dict, repr=False)

    @property
    def weights(self) -> Float64Weights:
        return Float64Weights(self.compact_weights)

    def on(self, device: torch.device) -> Parameters:
        """The same draws on `device`, each weight in its compact dtype (one copy, shared with `weights_as`, where
        the pass's dtype is the compact one): the float64 reference and the statistics then run there."""
        if self.x.device == device:
            return self
        moved = [w.to(device) for w in self.compact_weights]
        converted = self._converted
        dtypes = {w.dtype for w in moved}
        if len(dtypes) == 1:  # the pass in that dtype reads these very tensors: no second copy on the device
            converted.setdefault((dtypes.pop(), str(device)), moved)
        return Parameters(
            moved,
            [None if b is None else b.to(device) for b in self.biases],
            self.x.to(device),
            None if self.labels is None else self.labels.to(device),
            converted,
        )

    def weights_as(self, dtype: torch.dtype, device: torch.device) -> list[Tensor]:
        """The weights in another dtype/device, converted once per analysis (the pass and the chain share it)."""
        key = (dtype, str(device))
        if key not in self._converted:
            self._converted[key] = [w.to(device=device, dtype=dtype) for w in self.compact_weights]
        return self._converted[key]


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
    """Seeded draws: layer t from its own generator (seed, t), so layers are drawn in parallel threads (torch
    releases the GIL) and the numbers do not depend on the thread count; inputs and labels from `seed` itself."""
    store = TORCH_DTYPES[spec.dtype]
    shapes = list(zip(spec.widths[1:], spec.widths[:-1], strict=True))  # (n_out, n_in) per layer

    def draw(t: int) -> Tensor:
        if spec.init not in INITS:  # the schema refuses anything else
            raise SpecError("init", f"unknown init {spec.init!r}")
        return _stored(draw_weight(shapes[t - 1], spec.init, spec.weight_scale, layer_seed(spec.seed, t)), store)

    workers = max(1, min(torch.get_num_threads(), len(shapes)))
    if workers == 1 or sum(a * b for a, b in shapes) < PARALLEL_DRAW_MIN:
        weights = [draw(t) for t in range(1, len(shapes) + 1)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            weights = list(pool.map(draw, range(1, len(shapes) + 1)))
    biases: list[Tensor | None] = [
        torch.zeros(n_out, dtype=torch.float64) if spec.bias else None for n_out, _ in shapes
    ]
    gen = torch.Generator(device="cpu").manual_seed(spec.seed)
    x = torch.randn(spec.batch_size, spec.widths[0], generator=gen, dtype=torch.float64) * spec.input_scale
    x = _round_finite(x, store)
    labels = None
    if spec.loss == "cross_entropy":
        labels = torch.randint(0, spec.widths[-1], (spec.batch_size,), generator=gen)
    return Parameters(weights, biases, x, labels)


def _stored(w: Tensor, store: torch.dtype) -> Tensor:
    """`_compact(_round_finite(w, store))` in two passes where the pass dtype is narrower than float64 and holds
    every rounded value finite (the usual case): those values are float32 numbers exactly."""
    if store != torch.float64:
        rounded = w.to(store)
        # a finite float64 sum of them proves every value finite (an overflowing sum only sends it the long way)
        if math.isfinite(float(rounded.sum(dtype=torch.float64))):
            return rounded if store == torch.float32 else rounded.float()
    return _compact(_round_finite(w, store))


def _compact(w: Tensor) -> Tensor:
    """float32 where that holds every value exactly (any pass dtype but float64 after rounding), else as is."""
    if w.dtype == torch.float64:
        narrow = w.float()
        if torch.equal(narrow.double(), w):
            return narrow
    return w


def layer_seed(seed: int, layer: int) -> int:
    """A 63-bit seed for layer t's generator from (seed, t): nearby seeds give unrelated streams."""
    digest = hashlib.sha256(f"gradstab-weights:{seed}:{layer}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _round_finite(v: Tensor, store: torch.dtype) -> Tensor:
    """v rounded to the pass dtype, kept in v's dtype; entries the dtype cannot hold keep their exact value.

    The pass re-rounds them (to ±inf, and reports the overflow); the exact reference needs the
    network as drawn.
    """
    if store == v.dtype or (store == torch.float64 and v.dtype == torch.float32):
        return v  # the pass dtype holds every value of v exactly
    rounded = v.to(store).to(v.dtype)
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


@dataclass
class PassState:
    """What a pass in the dtype holds between its layers: the trainable weights and biases (in the compute dtype,
    float64 where float16 is emulated), and how each value is rounded."""

    target: torch.dtype  # the requested dtype
    compute: torch.dtype  # the dtype the arithmetic runs in
    emulated: bool
    weights: list[Tensor]
    biases: list[Tensor | None]

    def rnd(self, t: Tensor) -> Tensor:
        """Round to the requested dtype (forward and backward) where float16 is emulated; else t itself."""
        return _Round.apply(t, self.target) if self.emulated else t

    def layer(self, h: Tensor, t: int, name: str) -> Tensor:
        """σ_t(W^t h [+ b^t]) as a native pass holds it. rnd(h): a no-op forward (h is already representable) that
        rounds ∂ℓ/∂h coming out of the matmul."""
        z = self.rnd(self.rnd(h) @ self.weights[t - 1].T)
        b = self.biases[t - 1]
        if b is not None:
            z = self.rnd(z + b)
        if self.emulated and name in ("sigmoid", "tanh"):
            return _RoundedOutputActivation.apply(z, name, self.target)
        return self.rnd(get_activation(name).fn(z))


def start_pass(
    spec: ModelSpec, params: Parameters, device: torch.device, emulate_float16: bool = True
) -> tuple[PassState, Tensor]:
    """The pass's state and its input x (emulate_float16=False runs float16 natively on the CPU too)."""
    target = TORCH_DTYPES[spec.dtype]
    emulated = target == torch.float16 and device.type == "cpu" and emulate_float16
    compute = torch.float64 if emulated else target
    # detach() shares the storage without a copy: autograd reads the weights and writes only .grad of this view
    weights = [w.detach().requires_grad_(True) for w in params.weights_as(compute, device)]
    biases = [
        None if b is None else b.to(device=device, dtype=compute, copy=True).requires_grad_(True) for b in params.biases
    ]
    return PassState(target, compute, emulated, weights, biases), params.x.to(device=device, dtype=compute)


def finish_pass(
    spec: ModelSpec, params: Parameters, device: torch.device, st: PassState, h: Tensor, outputs: list[Tensor]
) -> PassResult:
    """The loss of the top activations h, its backward, and what the pass produced."""
    # rnd(h): rounds ∂ℓ/∂h^d, which a native pass holds in the dtype, before it reaches h^d
    loss = st.rnd(_loss(spec.loss, st.rnd(h), params.labels, device))
    # Loss scaling (mixed precision's fix for float16 underflow): backpropagate S·ℓ in the dtype;
    # the gradients stay scaled here (that is where the dtype's range bites) and are unscaled in
    # float64 for the statistics, as torch.amp's GradScaler unscales them in float32.
    (st.rnd(loss * spec.loss_scale) if spec.loss_scale != 1.0 else loss).backward()
    grads = []
    for w in st.weights:
        g = w.grad if w.grad is not None else torch.zeros_like(w)  # a branch scaled by 0 gets no gradient at all
        grads.append(g.to(st.target).to(st.compute) if st.emulated else g)
    return PassResult(
        loss=float(loss.detach().double()),
        outputs=[o.detach() for o in outputs],
        output_grads=[torch.zeros_like(o) if o.grad is None else o.grad.detach() for o in outputs],
        weight_grads=[g.detach() for g in grads],
        emulated=st.emulated,
    )


def run_pass(spec: ModelSpec, params: Parameters, device: torch.device, emulate_float16: bool = True) -> PassResult:
    """The pass in the spec's dtype; emulate_float16=False runs float16 natively on the CPU too (tests compare)."""
    st, h = start_pass(spec, params, device, emulate_float16)
    outputs: list[Tensor] = []
    for t, name in enumerate(spec.activations, start=1):
        h = st.layer(h, t, name)
        h.retain_grad()
        outputs.append(h)
    return finish_pass(spec, params, device, st, h, outputs)


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
