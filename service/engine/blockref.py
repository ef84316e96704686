"""The exact-arithmetic reference of a residual/normalised network, and the backward walk its products share.

Forward: every tensor is kept as v·e^c with max|v| = 1 and one float64 log scale c per tensor, so a residual
stream of 1e300 or a branch of 1e-300 stays exact (the plain reference keeps one scale per sample; here a
normalisation can couple the samples, and samples of one batch differ by far less than float64's range). σ' is
taken at the true pre-activation while it is below 1e100 and from σ's asymptote beyond (as in `reference`).

Backward (`walk`): rows X of a linear map on the network's values are carried down the operations in reverse.
The rows' layout is (S, R, Bi, n): S groups of R rows over Bi samples × n units. Without batchnorm every sample
is its own group (S = B, Bi = 1: the per-sample Jacobians ∂h^d_b/∂h^t_b, block-diagonal over the batch). With
batchnorm the samples are coupled and the product is the whole batch's (S = 1, Bi = B: ∂h^d/∂h^t as a
(B·n_d) × (B·n_t) matrix, exactly what autograd differentiates in a training step). The vector-Jacobian
products of the normalisations are symmetric, so the same functions push rows up (JVP) as down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .activations import get as get_activation
from .activations import limit_prime
from .architecture import Op, architecture_of, ops
from .events import Factored, WeightGradLog, weight_grad_logs
from .network import Parameters
from .reference import (
    MAX_TRUE_Z,
    LayerReference,
    Reference,
    _normalise,
    _set_pre_activation_stats,
    _top_gradient,
)
from .spec import NORM_EPS, ModelSpec

Tensor = torch.Tensor
LN_MAX_TRUE_Z = math.log(MAX_TRUE_Z)


@dataclass
class NormSite:
    """One normalisation layer of the reference: y = (x − μ)/√(v + ε) (rmsnorm: x/√(mean x² + ε)) and ln 1/√(v + ε)
    per sample (layernorm, rmsnorm: (B,)) or per unit (batchnorm: (n,)), in true units."""

    kind: str
    y: Tensor  # (B, n)
    ln_inv: Tensor


@dataclass
class ArchReference(Reference):
    """The plain reference's fields (per layer σ', h^t, z statistics; the top gradient) and the block network's own:
    the normalisation sites and σ' per operation index, the inputs of each weight layer, and the exact gradients."""

    sites: dict[int, NormSite] = field(default_factory=dict)  # op index → norm site
    layer_inputs: list[tuple[Tensor, float]] = field(default_factory=list)  # per layer: (v, c) of its linear's input
    batch_coupled: bool = False  # batchnorm present: the products are the whole batch's


def _renorm(v: Tensor, c: float) -> tuple[Tensor, float]:
    peak = float(v.abs().max()) if v.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return v, c if peak else -math.inf
    return v / peak, c + math.log(peak)


def _norm_forward(kind: str, v: Tensor, c: float) -> NormSite:
    """The normalisation of v·e^c in the log domain: ε is compared with the true variance e^{2c}·var(v)."""
    dim = 0 if kind == "batchnorm" else 1
    d = v if kind == "rmsnorm" else v - v.mean(dim=dim, keepdim=True)
    ln_var = torch.log((d * d).mean(dim=dim)) + 2.0 * c
    ln_den = 0.5 * torch.logaddexp(ln_var, torch.full_like(ln_var, math.log(NORM_EPS)))
    scale = torch.exp(c - ln_den)
    y = d * (scale[None, :] if kind == "batchnorm" else scale[:, None])
    return NormSite(kind, y, -ln_den)


def _act_forward(name: str, v: Tensor, c: float) -> tuple[Tensor, Tensor, float, bool]:
    """(σ'(z), σ(z) as v', its scale c', asymptotic?) for z = v·e^c."""
    act = get_activation(name)
    if act.homogeneous:
        return act.prime(v), act.fn(v), c, False
    if c <= 0.0:  # |z| ≤ 1: formed at its true size
        z = v * math.exp(c)
        return act.prime(z), act.fn(z), 0.0, False
    ln_abs = torch.log(v.abs()) + c
    fits = ln_abs < LN_MAX_TRUE_Z
    z = torch.where(fits, torch.sign(v) * torch.exp(torch.clamp(ln_abs, max=LN_MAX_TRUE_Z)), torch.zeros_like(v))
    sp = torch.where(fits, act.prime(z), limit_prime(act, v))
    out = torch.where(fits, act.fn(z) * math.exp(-c), limit_prime(act, v) * v)
    return sp, out, c, bool((~fits).any())


def run_block_reference(spec: ModelSpec, params: Parameters) -> ArchReference:
    """The float64 forward along `architecture.ops`, then the exact gradients by `walk` (biases are 0 at init)."""
    kind = architecture_of(spec).normalization.kind
    res = architecture_of(spec).residual
    v, c = _renorm(params.x, 0.0)
    saved: list[tuple[Tensor, float]] = []
    sites: dict[int, NormSite] = {}
    sigma_primes: dict[int, Tensor] = {}
    inputs: list[tuple[Tensor, float]] = []
    z_dirs: list[Tensor] = []
    z_scales: list[Tensor] = []
    layers: list[LayerReference] = []
    asym: list[int] = []
    sp = torch.empty(0, device=params.x.device)
    for i, op in enumerate(ops(spec)):
        if op.kind == "fork":
            saved.append((v, c))
        elif op.kind == "norm":
            sites[i] = site = _norm_forward(kind, v, c)
            v, c = _renorm(site.y, 0.0)
        elif op.kind == "linear":
            inputs.append((v, c))
            v, c = _renorm(v @ params.weights[op.layer - 1].T, c)
            z_dirs.append(v)
            z_scales.append(torch.full((v.shape[0],), c, dtype=torch.float64, device=v.device))
        elif op.kind == "act":
            sp, out, c, asymptotic = _act_forward(spec.activations[op.layer - 1], v, c)
            sigma_primes[i] = sp
            if asymptotic:
                asym.append(op.layer)
            v, c = _renorm(out, c)
        elif op.kind == "scale":
            assert res is not None
            v, c = (v, c + math.log(res.branch_scale)) if res.branch_scale > 0 else (torch.zeros_like(v), -math.inf)
        elif op.kind == "add":
            v0, c0 = saved.pop()
            m = max(c0, c)
            v, c = _renorm(v0 * _exp(c0 - m) + v * _exp(c - m), m)
        else:  # mark
            h_dir, ds = _normalise(v)
            layers.append(LayerReference(sp, h_dir, ds + c, 0.0, 0.0, 0.0, op.layer in asym))
    # layer t's σ' is that of its own activation (the mark follows it)
    act_index = [i for i, op in enumerate(ops(spec)) if op.kind == "act"]
    for t, i in enumerate(act_index):
        layers[t].sigma_prime = sigma_primes[i]
    _set_pre_activation_stats(layers, z_dirs, z_scales)
    notes = []
    if asym:
        notes.append(
            f"the exact pre-activations pass 1e100 from layer {asym[0]} on; σ' there is the slope of σ's asymptote"
        )
    top_dir, top_log = _top_gradient(spec, params, layers[-1])
    return ArchReference(
        layers, top_dir, top_log, notes, sites=sites, layer_inputs=inputs, batch_coupled=kind == "batchnorm"
    )


def _exp(x: float) -> float:
    return 0.0 if x == -math.inf else math.exp(x)


# ---- the backward walk (shared by the exact gradients and the products) -------------------------------------


@dataclass
class Rows:
    """Rows X (S, R, Bi, n) of a linear functional on one of the network's tensors, times e^L per group (S,)."""

    x: Tensor
    log: Tensor

    def unit(self) -> Rows:
        norm = torch.linalg.vector_norm(self.x.flatten(1), dim=1)
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
        return Rows(self.x / safe.to(self.x.dtype)[:, None, None, None], self.log + torch.log(norm.double()))

    def plus(self, other: Rows) -> Rows:
        m = torch.maximum(self.log, other.log)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        a = torch.exp(self.log - m).to(self.x.dtype)[:, None, None, None]
        b = torch.exp(other.log - m).to(self.x.dtype)[:, None, None, None]
        return Rows(self.x * a + other.x * b, m).unit()


def layout(t: Tensor, coupled: bool) -> Tensor:
    """A per-sample tensor (B, n) in the rows' layout (S, 1, Bi, n)."""
    return t[None, None] if coupled else t[:, None, None, :]


class Operators:
    """The per-operation factors of the backward walk in the chain's precision and layout."""

    def __init__(self, spec: ModelSpec, ref: ArchReference, weights: list[Tensor], precision: torch.dtype) -> None:
        self.ops = ops(spec)
        self.weights = weights
        self.coupled = ref.batch_coupled
        self.kind = architecture_of(spec).normalization.kind
        res = architecture_of(spec).residual
        self.branch_scale = res.branch_scale if res is not None else 1.0
        device = weights[0].device
        act_index = [i for i, op in enumerate(self.ops) if op.kind == "act"]
        self.sp: dict[int, tuple[Tensor, Tensor]] = {}
        for t, i in enumerate(act_index):
            sp = ref.layers[t].sigma_prime  # (B, n)
            peak = sp.abs().amax() if self.coupled else sp.abs().amax(dim=1)
            safe = torch.where(peak > 0, peak, torch.ones_like(peak))
            scaled = sp / (safe if self.coupled else safe[:, None])
            self.sp[i] = (
                layout(scaled, self.coupled).to(device, precision),
                torch.log(peak).reshape(-1),
            )  # (S,): one per group
        self.norms: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        for i, site in ref.sites.items():
            ln_inv = site.ln_inv
            if self.coupled:  # one group: the factor per sample (or unit) relative to its largest
                top = ln_inv.max()
                rel = torch.exp(ln_inv - top)
                inv = rel[None, None, None, :] if site.kind == "batchnorm" else rel[None, None, :, None]
                log = top.reshape(1)
            else:
                inv, log = torch.ones(1, 1, 1, 1, dtype=torch.float64, device=device), ln_inv
            self.norms[i] = (layout(site.y, self.coupled).to(device, precision), inv.to(device, precision), log)
        self.device = device

    def vjp(self, i: int, rows: Rows, transpose: bool = False) -> Rows:
        """rows · ∂(output of op i)/∂(its input); transpose: ∂(output)/∂(input) · rows (the JVP), for linear and
        scale, act and norm being symmetric."""
        op = self.ops[i]
        if op.kind == "linear":
            w = self.weights[op.layer - 1]
            x = rows.x
            out = x.reshape(-1, x.shape[-1]) @ (w.T if transpose else w)  # one GEMM over every row and sample
            return Rows(out.reshape(*x.shape[:-1], out.shape[-1]), rows.log).unit()
        if op.kind == "act":
            sp, log = self.sp[i]
            return Rows(rows.x * sp, rows.log + log.to(rows.log.device))  # σ' ≤ its peak: the linear renormalises
        if op.kind == "norm":
            y, inv, log = self.norms[i]
            return Rows(_norm_vjp(self.kind, rows.x, y) * inv, rows.log + log.to(rows.log.device)).unit()
        if op.kind == "scale":
            if self.branch_scale == 0.0:
                return Rows(torch.zeros_like(rows.x), torch.full_like(rows.log, -math.inf))
            return Rows(rows.x, rows.log + math.log(self.branch_scale))
        raise ValueError(op.kind)


def _norm_vjp(kind: str, x: Tensor, y: Tensor) -> Tensor:
    """x·J for J = I − 11ᵀ/n − y yᵀ/n (layernorm, over units), I − y yᵀ/n (rmsnorm), I − 11ᵀ/B − y yᵀ/B per unit over
    the batch (batchnorm), without the 1/√(v + ε) factor. J is symmetric."""
    if kind == "batchnorm":
        xc = x - x.mean(dim=2, keepdim=True)  # y has zero mean: (x·y) = (xc·y), and xc is exactly 0 for x ∝ 1
        return xc - (xc * y).sum(dim=2, keepdim=True) * y / x.shape[2]
    xc = x - x.mean(dim=-1, keepdim=True) if kind == "layernorm" else x
    return xc - (xc * y).sum(dim=-1, keepdim=True) * y / x.shape[-1]


def walk(
    operators: Operators, rows: Rows, visit: Callable[[Op, Rows, bool], None] | None = None, until: int = 0
) -> Rows:
    """Carry rows at h^d down the operations to op `until` (0: all of them), and return the rows at its output;
    visit(op, rows at the op's output, inside a residual branch?) first.

    At a mark the rows are those at h^t, at a linear those at z^t. An addition sends the rows both down the branch
    and, held aside, across the skip; the fork where the branch began adds them back. Stopped inside a branch, the
    rows are the branch's: h^t there reaches h^d through the branch only."""
    skips: list[Rows] = []
    for i in range(len(operators.ops) - 1, until - 1, -1):
        op = operators.ops[i]
        if visit is not None:
            visit(op, rows, bool(skips))
        if op.kind == "mark":
            continue
        if op.kind == "add":
            skips.append(rows)
        elif op.kind == "fork":
            rows = rows.plus(skips.pop())
        else:
            rows = operators.vjp(i, rows)
    return rows


def walk_up(operators: Operators, rows: Rows, start: int) -> Rows:
    """The transpose of `walk`: rows at the output of op `start` carried up to h^d (Jacobian-vector products).

    A fork holds the rows for the skip; the addition adds them to the branch's (where `start` lies inside a branch,
    the addition finds no skip: the stream below does not depend on h^t there)."""
    skips: list[Rows] = []
    for i in range(start + 1, len(operators.ops)):
        op = operators.ops[i]
        if op.kind == "mark":
            continue
        if op.kind == "fork":
            skips.append(rows)
        elif op.kind == "add":
            rows = rows.plus(skips.pop()) if skips else rows
        else:
            rows = operators.vjp(i, rows, transpose=True)
    return rows


def per_sample(rows: Rows, coupled: bool) -> Factored:
    """Rows holding one row per sample (R = 1) as per-sample directions and log scales."""
    x = rows.x[0, 0] if coupled else rows.x[:, 0, 0, :]  # (B, n)
    log = rows.log.expand(x.shape[0]) if coupled else rows.log
    norm = torch.linalg.vector_norm(x, dim=1)
    return Factored(x / torch.where(norm > 0, norm, 1.0)[:, None], log + torch.log(norm))


def exact_gradients(
    spec: ModelSpec, params: Parameters, ref: ArchReference
) -> tuple[list[Factored], list[WeightGradLog]]:
    """∂ℓ/∂h^t and ∂ℓ/∂W^t of every layer in exact arithmetic (float64, factored), for the range events: the walk
    of the exact top gradient, one row per sample (the whole batch's one row where batchnorm couples them)."""
    operators = Operators(spec, ref, list(params.weights), torch.float64)
    g_dir, g_log = ref.top_grad_dir, ref.top_grad_log_scale
    if ref.batch_coupled:
        top = g_log.max()
        top = torch.where(torch.isfinite(top), top, 0.0)
        rows = Rows((g_dir * torch.exp(g_log - top)[:, None])[None, None], top.reshape(1))
    else:
        rows = Rows(g_dir[:, None, None, :], g_log.clone())
    d = spec.depth
    outs: list[Factored | None] = [None] * d
    g_zs: list[Factored | None] = [None] * d

    def visit(op: Op, r: Rows, _: bool) -> None:
        if op.kind in ("mark", "linear"):
            (outs if op.kind == "mark" else g_zs)[op.layer - 1] = per_sample(r, ref.batch_coupled)

    walk(operators, rows, visit)
    inputs = [Factored(direction, log + c) for v, c in ref.layer_inputs for direction, log in [_normalise(v)]]
    return [o for o in outs if o is not None], weight_grad_logs([g for g in g_zs if g is not None], inputs)
