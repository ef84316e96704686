"""The engine's input: a validated, normalised model spec (plain dataclasses, no I/O).

`schemas.spec.ModelSpecSchema` loads the wire format into these objects and owns the
defaults and limits; the engine trusts what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

ACTIVATIONS: tuple[str, ...] = (
    "identity",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "elu",
    "selu",
    "softplus",
)
INITS: tuple[str, ...] = (
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "orthogonal",
)
DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
LOSSES: tuple[str, ...] = ("sum", "mean", "mse", "cross_entropy")
JACOBIAN_METHODS: tuple[str, ...] = ("auto", "exact", "estimate")
CHAIN_PRECISIONS: tuple[str, ...] = ("auto", "float64", "float32")
DEFAULT_ACTIVATION = "relu"  # every layer's σ when a spec names none
# jacobian.method=auto computes the products exactly up to this much work (GFLOP); the server's
# budget (GRADSTAB_AUTO_EXACT_GFLOP, schemas.limits.Limits.auto_exact_gflop) defaults to it.
AUTO_EXACT_GFLOP = 20.0


@dataclass(frozen=True)
class JacobianOptions:
    """How the products ∂h^d/∂h^t are computed.

    exact: the formed product, renormalised every layer; estimate: matrix-free random
    probes (Frobenius) and warm-started power iteration (spectral); auto: exact unless
    its cost passes the budget.
    """

    method: str = "auto"
    # auto: float64 for cheap chains and singular_values="all", else float32 (norms within ~1e-6 in
    # log10 of float64); analysis.chain_precision decides, the report names the one that ran.
    precision: str = "auto"
    probes: int = 16
    power_iterations: int = 1
    singular_values: str = "auto"  # auto | all | none: svdvals for σ_min on formed products


@dataclass(frozen=True)
class Thresholds:
    """Where `stable` ends, in log10 of the total RMS growth ‖∂h^d/∂h^1‖_F/√n_d."""

    exploding_log10: float = 2.0
    vanishing_log10: float = -2.0
    # A layer counts as overflowed / underflowed when more than this fraction of its
    # values are non-finite / flushed to zero: one stray element is not a diagnosis.
    flag_fraction: float = 0.01
    # ... and at least this many of them: a single stray value in a 32-value layer is not a diagnosis.
    flag_min_count: int = 2


@dataclass(frozen=True)
class ModelSpec:
    """A fully normalised MLP spec: h^t = σ_t(W^t h^{t-1} [+ b^t]), t = 1..d."""

    widths: tuple[int, ...]  # (n_0, n_1, ..., n_d)
    activations: tuple[str, ...]  # one per layer, length d
    init: str = "kaiming_normal"
    weight_scale: float = 1.0
    bias: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    batch_size: int = 8
    input_scale: float = 1.0
    seed: int = 0
    loss: str = "sum"
    learning_rate: float | None = None
    loss_scale: float = 1.0  # backpropagate loss_scale·ℓ (float16 mixed precision); stats are unscaled
    jacobian: JacobianOptions = field(default_factory=JacobianOptions)
    thresholds: Thresholds = field(default_factory=Thresholds)
    verify_recommendations: bool = True

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def with_changes(self, **changes: object) -> ModelSpec:
        """A copy with some fields changed; a single activation name applies to every layer."""
        act = changes.pop("activation", None)
        if isinstance(act, str):
            changes["activations"] = (act,) * self.depth
        return replace(self, **changes)  # type: ignore[arg-type]
