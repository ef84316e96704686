"""The engine's input: a validated, normalised model spec (plain dataclasses, no I/O).

`schemas.spec.ModelSpecSchema` loads the wire format into these objects and owns the
defaults and limits; the engine trusts what it is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .training_spec import TrainingOptions

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
# init of a recurrent spec's W_hh may also be identity (Le, Jaitly & Hinton 2015: weight_scale·I)
RECURRENT_INITS: tuple[str, ...] = (*INITS, "identity")
CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
LOSS_AT: tuple[str, ...] = ("last", "every")
# σ of the rnn cell: homogeneous ones (the reference keeps a log scale per sample) and bounded ones
RNN_ACTIVATIONS: tuple[str, ...] = ("tanh", "sigmoid", "relu", "leaky_relu", "identity")
RECURRENT_ACTIVATION = "tanh"  # the rnn cell's σ when a spec names none (torch.nn.RNN's default)
DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
LOSSES: tuple[str, ...] = ("sum", "mean", "mse", "cross_entropy")
JACOBIAN_METHODS: tuple[str, ...] = ("auto", "exact", "estimate")
CHAIN_PRECISIONS: tuple[str, ...] = ("auto", "float64", "float32")
NORM_KINDS: tuple[str, ...] = ("none", "layernorm", "rmsnorm", "batchnorm")
NORM_POSITIONS: tuple[str, ...] = ("pre", "post")
RESIDUAL_EVERY: tuple[int, ...] = (1, 2, 3)
# ε under the square root of every normalisation layer (torch.nn.LayerNorm's, RMSNorm's and BatchNorm1d's default).
NORM_EPS = 1e-5
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
class Residual:
    """Blocks of `every` consecutive layers: h_out = h_in + branch_scale·f(h_in) where the block's input and output
    widths are equal (f: the block's layers as in the plain MLP); a block whose widths differ has no skip."""

    every: int = 1
    branch_scale: float = 1.0


@dataclass(frozen=True)
class Normalization:
    """A normalisation layer (γ = 1, β = 0 at init; ε = NORM_EPS): pre normalises the input of each block's branch
    (without residual: of each weight layer), post the output of each layer's activation (with residual: of each
    block after the addition). batchnorm uses the batch's own statistics (biased variance), as in a training step."""

    kind: str = "none"
    position: str = "pre"


@dataclass(frozen=True)
class Architecture:
    """What a network adds to the plain MLP. The schema turns one that adds nothing into None (the plain path)."""

    residual: Residual | None = None
    normalization: Normalization = field(default_factory=Normalization)

    @property
    def is_plain(self) -> bool:
        return self.residual is None and self.normalization.kind == "none"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        """The wire form (as in a recommendation's `change`) → an Architecture; absent members take defaults."""
        res = data.get("residual")
        norm = data.get("normalization")
        return cls(
            residual=None if res is None else Residual(**res),
            normalization=Normalization() if norm is None else Normalization(**norm),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "residual": None if self.residual is None else asdict(self.residual),
            "normalization": asdict(self.normalization),
        }


@dataclass(frozen=True)
class Recurrent:
    """A recurrent network unrolled over `steps` (used instead of `layers`): torch.nn.RNN/LSTM/GRU's equations,
    `stacked` layers of `hidden` units, the input x_s of `input_dim` units at every step. forget_bias: the LSTM's
    forget-gate bias and the GRU's update-gate bias (the gate that keeps the state), 0 as in torch by default."""

    cell: str = "rnn"
    steps: int = 100
    hidden: int = 64
    input_dim: int = 32
    stacked: int = 1
    loss_at: str = "last"
    forget_bias: float = 0.0


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
    # residual blocks and normalisation layers; None: the plain MLP (and its report ids, which omit this field)
    architecture: Architecture | None = None
    # k optimizer steps on a synthetic task (service/engine/training.py); None: none (and the report ids as before)
    training: TrainingOptions | None = None
    # a recurrent network (widths: input_dim then hidden per step); None: feed-forward (report ids omit the field)
    recurrent: Recurrent | None = None

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def with_changes(self, **changes: object) -> ModelSpec:
        """A copy with some fields changed; a single activation name applies to every layer."""
        act = changes.pop("activation", None)
        if isinstance(act, str):
            changes["activations"] = (act,) * self.depth
        rec = changes.get("recurrent")
        if isinstance(rec, dict) and self.recurrent is not None:  # a partial change, as a recommendation gives it
            merged = replace(self.recurrent, **rec)
            changes["recurrent"] = merged
            changes["widths"] = recurrent_widths(merged)
            name = self.activations[0] if merged.cell == "rnn" else RECURRENT_ACTIVATION
            changes["activations"] = (name,) * merged.steps
        arch = changes.get("architecture")
        if isinstance(arch, dict):
            arch = Architecture.from_dict(arch)
            changes["architecture"] = None if arch.is_plain else arch
        train = changes.get("training")
        if isinstance(train, dict):
            changes["training"] = training_from_dict(train)
        return replace(self, **changes)  # type: ignore[arg-type]


def recurrent_widths(rec: Recurrent) -> tuple[int, ...]:
    """The widths a recurrent spec carries: input_dim, then the hidden state once per step (depth = steps), so the
    per-layer machinery (verdict, onset, plots) reads steps where it reads layers."""
    return (rec.input_dim,) + (rec.hidden,) * rec.steps


def spec_dict(spec: ModelSpec) -> dict[str, Any]:
    """The spec as plain values; `architecture` only where there is one, so a plain spec hashes (report ids,
    job ids) exactly as it did before the field existed."""
    raw = _plain(spec)
    if spec.architecture is None:
        raw.pop("architecture")
    if spec.training is None:
        raw.pop("training")
    if spec.recurrent is None:
        raw.pop("recurrent")
    return raw


def _plain(value: Any) -> Any:
    """dataclasses.asdict for these frozen specs (dataclasses → dicts, tuples kept, scalars as they are) without
    asdict's deep copies: a report id is hashed from it on every request, and asdict took 0.25 ms of that."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def spec_from_dict(data: dict[str, Any]) -> ModelSpec:
    """The inverse of spec_dict (JSON turns tuples into lists; the engine wants tuples)."""
    d = dict(data)
    d["widths"] = tuple(d["widths"])
    d["activations"] = tuple(d["activations"])
    d["jacobian"] = JacobianOptions(**d["jacobian"])
    d["thresholds"] = Thresholds(**d["thresholds"])
    if d.get("architecture") is not None:
        d["architecture"] = Architecture.from_dict(d["architecture"])
    if d.get("training") is not None:
        d["training"] = training_from_dict(d["training"])
    if d.get("recurrent") is not None:
        d["recurrent"] = Recurrent(**d["recurrent"])
    return ModelSpec(**d)


def training_from_dict(data: dict[str, Any]) -> TrainingOptions:
    """The wire/JSON form of `training` (histograms a list) → TrainingOptions."""
    d = dict(data)
    d["histograms"] = tuple(d.get("histograms", ()))
    return TrainingOptions(**d)
