"""The backpropagated Jacobian products P_t = ∂h^d/∂h^t = Π_{i=t}^{d-1} diag(σ'(z^{i+1})) W^{i+1}.

Built from the top: P_d = I, P_{t-1} = (P_t · diag(σ'(z^t))) W^t — one (B·n_d, n_t) @
(n_t, n_{t-1}) GEMM per layer. Every product is renormalised to unit Frobenius norm per
sample and its log-scale kept in float64, so a product of norm 1e300 or 1e-300 is exact
whatever the pass dtype.

exact: the formed product gives the Frobenius norm (exact), the spectral norm (warm-started
power iteration on the formed product, or svdvals where they are computed), σ_min and the
condition number (svdvals on the layers `cost.svd_layers` picks), and a structural rank
bound (dead units). estimate: matrix-free, for widths where the formed product is too big:
random orthogonal probes pushed down once give every Frobenius norm; a power iteration of
VJP/JVP sweeps, warm-started from the layer above, gives each spectral norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import torch

from .cost import COLD_STEPS, POWER_BLOCK, svd_layers
from .reference import Reference
from .report import JacobianStats
from .spec import ModelSpec

Tensor = torch.Tensor
LN10 = math.log(10.0)
# The formed product resolves σ_min only down to about this fraction of σ_max (rounding of
# the chain's arithmetic accumulated over the layers); below it the value is a bound.
RESOLUTION = {torch.float64: 1e-13, torch.float32: 1e-5}
# Power steps for the first (top) product, which has no warm start, and the block size of the iteration.
BLOCK = POWER_BLOCK
# svdvals wait for a chunk of products of at most this many bytes (copies), then run as one batched call.
SVD_CHUNK_BYTES = 256 * 2**20
# The chain multiplies only the units with σ' ≠ 0 where no sample has more than this fraction of them live.
LIVE_MAX_FRACTION = 0.75
# ... and where the layer and the output have at least this many units (narrower, the gathers cost what they
# save). On a GPU a GEMM below ~1024 units takes about what the three extra kernels of the gather take to launch.
LIVE_MIN_UNITS = {"cpu": 128, "cuda": 1024}
# Devices where the power steps of consecutive products run a chunk of layers at a time (one batched GEMM for
# all of them, instead of some twenty small kernels per layer): a GPU, whose per-layer cost is kernel launches.
# The CPU keeps one step per layer with the carried basis, which measured faster there (bench/bench_launches.py).
CHUNKED_DEVICES = frozenset({"cuda"})
# A chunk holds at most this many bytes of products ...
CHUNK_BYTES = 64 * 2**20
# ... and is only formed where that is at least this many layers; at most this many (each layer of a chunk starts
# from the basis the chunk above ended with, so the farther it is, the more the steps must converge).
CHUNK_MIN_LAYERS = 4
CHUNK_MAX_LAYERS = 16


@dataclass
class ChainResult:
    stats: list[JacobianStats]  # index t-1 for layer t
    method: str


def _unit_rows(v: Tensor) -> tuple[Tensor, Tensor]:
    """Normalise each row (any trailing dims) to unit norm; returns (v̂, ln‖v‖) with -inf for zero rows."""
    norm = torch.linalg.vector_norm(v.reshape(v.shape[0], -1), dim=1)
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    shape = (-1,) + (1,) * (v.dim() - 1)
    return v / safe.reshape(shape), torch.log(norm.double())


def _scaled_sigma_prime(sp: Tensor) -> tuple[Tensor, Tensor]:
    """σ' (..., n) divided by its per-sample max over units (so float32 chains keep tiny σ'), and ln(max)."""
    peak = sp.abs().amax(dim=-1)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return sp / safe[..., None], torch.log(peak.double())


def _mean_log10(log_e: Tensor) -> float:
    """Batch mean of ln-values as log10 (the geometric mean over samples); -inf if any is -inf."""
    return float(log_e.mean()) / LN10


def _identity_stats(n_d: int) -> JacobianStats:
    half_log_n = 0.5 * math.log10(n_d)
    return JacobianStats(
        log10_spectral_norm=0.0,
        log10_frobenius_norm=half_log_n,
        log10_rms_gain=0.0,
        log10_min_singular_value=0.0,
        log10_condition_number=0.0,
        min_singular_value_status="resolved",
        rank_bound=n_d,
        log10_frobenius_norm_min=half_log_n,
        log10_frobenius_norm_max=half_log_n,
        method="identity",
    )


class _FrobStats(TypedDict):
    log10_frobenius_norm: float
    log10_rms_gain: float
    log10_frobenius_norm_min: float
    log10_frobenius_norm_max: float


def _frob_stats(log_fro: Tensor, n_d: int) -> _FrobStats:
    lf = log_fro / LN10
    mean = float(lf.mean())
    return {
        "log10_frobenius_norm": mean,
        "log10_rms_gain": mean - 0.5 * math.log10(n_d),
        "log10_frobenius_norm_min": float(lf.min()),
        "log10_frobenius_norm_max": float(lf.max()),
    }


@dataclass
class _ChainState:
    """What the exact chain's loop leaves on the device, for one host copy afterwards."""

    log_fros: list[Tensor]  # ‖P_t‖_F relative to the running scale, layer d-1 first, (B,) each
    grams: dict[int, Tensor]  # layer → Ritz Grams (B, 2, r, r) of the start basis and of the last step
    svds: dict[int, tuple[Tensor, Tensor]]  # layer → (ln σ_max/‖P‖_F, σ_min/σ_max) per sample


def exact_chain(
    spec: ModelSpec,
    weights: list[Tensor],
    ref: Reference,
    precision: torch.dtype,
    device: torch.device,
) -> ChainResult:
    """Every product formed, renormalised every layer; per-layer numbers copied to the host once at the end."""
    widths, d = spec.widths, spec.depth
    n_d, batch = widths[-1], spec.batch_size
    if d == 1:
        return ChainResult([_identity_stats(n_d)], "exact")
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 1)
    u = _orthogonal_probes(batch, min(BLOCK, n_d), n_d, gen).to(device=device, dtype=precision)  # (B, r, n_d)
    sp_units, log_peaks, active = _prepare_sigma_prime(ref, precision, device)
    rank_bounds = _rank_bounds(active, widths)
    # svdvals only where σ_min is not already known to be exactly 0 (dead units cut the rank)
    svd_at = {
        t for t in svd_layers(widths, spec.jacobian.singular_values, batch) if rank_bounds[t - 1] == min(n_d, widths[t])
    }
    state = _chain_loop(spec, weights, sp_units, u, svd_at, _live_units(ref, widths, device))
    return ChainResult(_summarise(spec, state, log_peaks, rank_bounds, precision), "exact")


def _live_units(ref: Reference, widths: tuple[int, ...], device: torch.device) -> list[Tensor | None]:
    """Per layer, where few enough units have σ' ≠ 0 (a ReLU's dead units): each sample's live units first,
    (B, k) with k the most any sample has (the rest padding, whose σ' is 0). None where the layer is dense,
    or where the gather would not pay.

    The chain then multiplies only those columns of P_t and rows of W^t: the dead units' terms are exact
    zeros, so the product is the same, at k/n_t of the GEMM's work (about half for a ReLU net at
    initialisation). The gathered rows of W (B, k, n_{t-1}) are a copy per sample, so this is only done
    where the product is at least as wide (n_d, n_t ≥ the device's LIVE_MIN_UNITS) and the copy no bigger than the
    product it multiplies, which keeps the chain's memory within the product, its copy and the output.
    """
    n_d = widths[-1]
    out: list[Tensor | None] = [None] * len(ref.layers)
    min_units = LIVE_MIN_UNITS.get(device.type, LIVE_MIN_UNITS["cpu"])
    if n_d < min_units:
        return out
    groups: dict[int, list[int]] = {}
    for i, lr in enumerate(ref.layers):
        if lr.sigma_prime.shape[1] >= min_units:
            groups.setdefault(lr.sigma_prime.shape[1], []).append(i)
    for n_t, idx in groups.items():
        live = torch.stack([ref.layers[i].sigma_prime for i in idx]) != 0  # (L, B, n_t)
        ks = live.sum(dim=2).amax(dim=1).tolist()
        order = torch.sort((~live).to(torch.int8), dim=2, stable=True).indices
        for j, (i, k) in enumerate(zip(idx, ks, strict=True)):
            if k <= LIVE_MAX_FRACTION * n_t and k * widths[i] <= n_d * n_t:
                out[i] = order[j, :, :k].contiguous().to(device)  # contiguous: reshape(-1) in the loop copies nothing
    return out


def _chain_loop(
    spec: ModelSpec,
    weights: list[Tensor],
    sp_units: list[Tensor],
    u: Tensor,
    svd_at: set[int],
    live: list[Tensor | None],
) -> _ChainState:
    """P_{t-1} = (P_t · diag(σ'(z^t))) W^t for t = d..2, with a power step (or svdvals) on each product.

    Device work only: no value is read back to the host inside the loop (svdvals, which checks its
    result on the host, run batched after it).
    """
    d, n_d, batch = spec.depth, spec.widths[-1], spec.batch_size
    steps = spec.jacobian.power_iterations
    # jac_prod holds P_t / e^{log_scale} up to the factor 1/fro of its own Frobenius norm: dividing by fro
    # is folded into the next layer's σ' scaling, so renormalising costs no pass over the product.
    # P_d = I is never formed: the first step writes diag(σ'(z^d)) W^d directly.
    jac_prod: Tensor | None = None  # (B, n_d, n_t)
    fro = torch.ones(batch, dtype=u.dtype, device=u.device)
    one = torch.ones((), dtype=u.dtype, device=u.device)
    state = _ChainState([], {}, {})
    pending = _PendingSvd(state.svds)
    power = _power_strategy(spec, u, state.grams)
    for t in range(d, 1, -1):  # produce P_{t-1} from P_t
        w = weights[t - 1]  # (n_t, n_{t-1})
        n_t, n_prev = w.shape
        scale = sp_units[t - 1] / fro[:, None]  # (B, n_t)
        if jac_prod is None:
            jac_prod = sp_units[t - 1][:, :, None] * w[None, :, :]
        elif (idx := live[t - 1]) is not None:  # only the live units' columns and rows: (B, n_d, k) @ (B, k, n_prev)
            k = idx.shape[1]
            cols = torch.gather(jac_prod, 2, idx[:, None, :].expand(batch, n_d, k))
            jac_prod = None  # freed before the GEMM's output is allocated
            rows = (
                w.index_select(0, idx.reshape(-1)).view(batch, k, n_prev).mul_(torch.gather(scale, 1, idx)[:, :, None])
            )
            jac_prod = torch.bmm(cols, rows)
        else:
            scaled = jac_prod * scale[:, None, :]  # (B, n_d, n_t)
            jac_prod = (scaled.reshape(batch * n_d, n_t) @ w).reshape(batch, n_d, n_prev)
        # summed in float64 whatever the chain's precision: a float32 sum of n_d·n_t squares is off by ~1e-7
        # relative, once per layer, and the log-norms add those up (4.6e-6 in log10 over 20 layers, issue 24)
        fro_new = torch.linalg.vector_norm(jac_prod.reshape(batch, -1), dim=1, dtype=torch.float64).to(u.dtype)
        state.log_fros.append(fro_new)
        fro = torch.where(fro_new > 0, fro_new, one)
        power.carry(w, scale)
        if t - 1 in svd_at:
            pending.add(t - 1, jac_prod, fro)
        elif steps:  # power_iterations=0: no spectral norms (Frobenius, rank and svd layers only)
            power.add(t - 1, jac_prod)
    power.flush()
    pending.flush()
    return state


def layers_per_chunk(spec: ModelSpec, device: torch.device, precision: torch.dtype) -> int:
    """How many products the power iteration takes at once: 0 (one step per layer, the basis carried down) off
    CHUNKED_DEVICES or where CHUNK_BYTES holds fewer than CHUNK_MIN_LAYERS of the widest product."""
    n_d, batch = spec.widths[-1], spec.batch_size
    widest = max(spec.widths[1:-1], default=n_d)
    per_chunk = CHUNK_BYTES // (batch * n_d * widest * precision.itemsize)
    if device.type not in CHUNKED_DEVICES or per_chunk < CHUNK_MIN_LAYERS:
        return 0
    return min(per_chunk, CHUNK_MAX_LAYERS)


def _power_strategy(spec: ModelSpec, u: Tensor, grams: dict[int, Tensor]) -> _CarriedPower | _ChunkedPower:
    steps = spec.jacobian.power_iterations
    if per_chunk := layers_per_chunk(spec, u.device, u.dtype):
        return _ChunkedPower(u, steps, grams, per_chunk)
    return _CarriedPower(u, steps, grams)


class _CarriedPower:
    """One power step per layer, the basis's image U·P_t carried down: U·P_{t-1} = (v ⊙ σ'/fro) W^t costs a
    skinny GEMM with W, not a pass over P_{t-1}, so each layer starts from the Ritz basis of the layer above
    with its first half-step already taken."""

    def __init__(self, u: Tensor, steps: int, grams: dict[int, Tensor]) -> None:
        self.u, self.steps, self.grams = u, steps, grams
        self.v: Tensor | None = None

    def carry(self, w: Tensor, scale: Tensor) -> None:
        if self.v is not None:
            batch, n_t, n_prev = scale.shape[0], w.shape[0], w.shape[1]
            self.v = ((self.v * scale[:, None, :]).reshape(-1, n_t) @ w).reshape(batch, -1, n_prev)

    def add(self, t: int, jac_prod: Tensor) -> None:
        if self.v is None:  # the first product with a power iteration: no warm start
            self.u, self.v = _power_steps(jac_prod, self.u, torch.bmm(self.u, jac_prod), max(self.steps, COLD_STEPS))
            self.grams[t] = _ritz_gram(self.v)[:, None].expand(-1, 2, -1, -1)
        else:
            half = _ritz_gram(self.v)  # the carried basis's own Ritz values: a lower bound as well
            self.u, self.v = _power_steps(jac_prod, self.u, self.v, self.steps)
            self.grams[t] = torch.stack([half, _ritz_gram(self.v)], dim=1)  # (B, 2, r, r)

    def flush(self) -> None:
        pass


class _ChunkedPower:
    """The power steps of a chunk of consecutive products at once: a few batched GEMMs and one Cholesky QR for
    up to CHUNK_MAX_LAYERS layers, where a step per layer launches some twenty small kernels.

    Every product of a chunk starts from the basis the chunk above ended with (the top one from COLD_STEPS steps
    on the first product): consecutive products share their top left singular subspace, but a chunk's lower
    layers lie farther from that basis than the carried one's, so each takes one step more than
    power_iterations (bench/bench_power_accuracy.py: with it, more accurate than the carried step).
    """

    def __init__(self, u: Tensor, steps: int, grams: dict[int, Tensor], per_chunk: int) -> None:
        self.u, self.steps, self.grams, self.per_chunk = u, steps, grams, per_chunk
        self.warm = False
        self.items: list[tuple[int, Tensor]] = []

    def carry(self, w: Tensor, scale: Tensor) -> None:
        pass

    def add(self, t: int, jac_prod: Tensor) -> None:
        if not self.warm:  # the top product: no warm start
            self.u, _ = _power_steps(jac_prod, self.u, torch.bmm(self.u, jac_prod), max(self.steps, COLD_STEPS))
            self.warm = True
        if self.items and self.items[0][1].shape != jac_prod.shape:
            self.flush()
        self.items.append((t, jac_prod))
        if len(self.items) >= self.per_chunk:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        k = len(self.items)
        batch, r, n_d = self.u.shape
        prods = torch.stack([p for _, p in self.items]).flatten(0, 1)  # (k·B, n_d, n_t)
        basis = self.u.expand(k, -1, -1, -1).reshape(k * batch, r, n_d)
        v = torch.bmm(basis, prods)
        first = _ritz_gram(v)
        basis, v = _power_steps(prods, basis, v, self.steps + 1)  # see the class docstring
        grams = torch.stack([first, _ritz_gram(v)], dim=1).view(k, batch, 2, r, r)
        for j, (t, _) in enumerate(self.items):
            self.grams[t] = grams[j]
        self.u = basis.view(k, batch, r, n_d)[-1]
        self.items = []


def _power_steps(jac_prod: Tensor, basis: Tensor, v: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Block power (subspace) iteration on P·Pᵀ from the basis U (B, r, n_d) with v = U·P: (new U, U·P).

    Each step reads P twice (v·Pᵀ, then U·P) as GEMMs with r rows, about what a matrix-vector product costs,
    and converges like (σ_{r+1}/σ_1)^k instead of (σ_2/σ_1)^k. Consecutive products share their top left
    singular subspace, so with the carried half-step one step per layer does what two did without it.
    """
    for _ in range(steps):
        basis = _orthonormal_rows(torch.bmm(v, jac_prod.transpose(1, 2)))  # (B, r, n_d): (P vᵀ)ᵀ
        v = torch.bmm(basis, jac_prod)  # (B, r, n_t)
    return basis, v


def _ritz_gram(v: Tensor) -> Tensor:
    """The Rayleigh–Ritz Gram matrix v·vᵀ of an orthonormal basis's image U·P: its top eigenvalue is a lower
    bound on σ_max². _summarise takes every layer's, relative to ‖P‖_F², in one call."""
    return torch.bmm(v, v.transpose(1, 2))


class _PendingSvd:
    """Products waiting for svdvals, run a chunk at a time: one batched call (and one host check) per chunk
    instead of one per layer, with the copies held bounded by SVD_CHUNK_BYTES."""

    def __init__(self, out: dict[int, tuple[Tensor, Tensor]]) -> None:
        self.out = out
        self.items: list[tuple[int, Tensor, Tensor]] = []
        self.bytes = 0

    def add(self, t: int, jac_prod: Tensor, fro: Tensor) -> None:
        if self.items and self.items[0][1].shape != jac_prod.shape:
            self.flush()
        self.items.append((t, jac_prod.clone(), fro))
        self.bytes += jac_prod.numel() * jac_prod.element_size()
        if self.bytes >= SVD_CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        layers = [t for t, _, _ in self.items]
        log_rel, rel_min = _svd_stats(
            torch.cat([p for _, p, _ in self.items]), torch.cat([f for _, _, f in self.items])
        )
        for t, a, b in zip(layers, log_rel.chunk(len(layers)), rel_min.chunk(len(layers)), strict=True):
            self.out[t] = (a, b)
        self.items, self.bytes = [], 0


def _summarise(
    spec: ModelSpec,
    state: _ChainState,
    log_peaks: list[Tensor],
    rank_bounds: list[int],
    precision: torch.dtype,
) -> list[JacobianStats]:
    """Everything per layer that needs no further pass over the products, for all layers at once."""
    widths, d, n_d = spec.widths, spec.depth, spec.widths[-1]
    increments = torch.log(torch.stack(state.log_fros).double()) + torch.stack(log_peaks[1:][::-1])  # (d-1, B)
    log_scale = torch.cumsum(increments, dim=0).flip(0)  # row t-1 ↦ ln ‖P_t‖_F, t = 1..d-1
    lf = (log_scale / LN10).cpu()
    frob_mean, frob_min, frob_max = (
        lf.mean(dim=1).tolist(),
        lf.min(dim=1).values.tolist(),
        lf.max(dim=1).values.tolist(),
    )
    log10_smax: dict[int, float] = {}
    if state.grams:
        order = sorted(state.grams)
        grams = torch.stack([state.grams[t] for t in order]).double()  # (L, B, 2, r, r)
        fro_sq = torch.stack([state.log_fros[d - 1 - t] for t in order]).double() ** 2  # ‖P_t‖_F² as held, (L, B)
        top = torch.linalg.eigvalsh(grams)[..., -1].amax(dim=2)  # (L, B): the better of the two bounds
        top = (top / torch.where(fro_sq > 0, fro_sq, 1.0)).clamp_min(1e-300)
        rel = 0.5 * torch.log(top).cpu() / LN10  # log10 σ_max/‖P‖_F
        log10_smax = dict(zip(order, (rel + lf[[t - 1 for t in order]]).mean(dim=1).tolist(), strict=True))
    svds = {t: (a.cpu(), b.cpu()) for t, (a, b) in state.svds.items()}
    log_scale = log_scale.cpu()
    stats: list[JacobianStats] = []
    resolution = RESOLUTION[precision]
    half_log_n = 0.5 * math.log10(n_d)
    for t in range(1, d):
        smax, smin, cond = log10_smax.get(t), None, None
        full = min(n_d, widths[t])
        rank_bound = rank_bounds[t - 1]
        status = "rank_deficient" if rank_bound < full else "not_computed"
        if t in svds:
            smax, svd_min, svd_cond, svd_status = _svd_summary(*svds[t], log_scale[t - 1], resolution)
            if status != "rank_deficient":  # a structural zero beats rounding noise
                smin, cond, status = svd_min, svd_cond, svd_status
        stats.append(
            JacobianStats(
                log10_spectral_norm=smax,
                log10_frobenius_norm=frob_mean[t - 1],
                log10_rms_gain=frob_mean[t - 1] - half_log_n,
                log10_min_singular_value=smin,
                log10_condition_number=cond,
                min_singular_value_status=status,
                rank_bound=rank_bound,
                log10_frobenius_norm_min=frob_min[t - 1],
                log10_frobenius_norm_max=frob_max[t - 1],
                method="exact",
            )
        )
    stats.append(_identity_stats(n_d))
    return stats


def _prepare_sigma_prime(
    ref: Reference, precision: torch.dtype, device: torch.device
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per layer: σ' over its per-sample peak (so float32 chains keep tiny σ'), ln peak, active units.

    Stacked into one set of operations where the layers have equal widths (the usual case), so
    deep narrow nets do not pay per-layer operation overhead for it.
    """
    sps = [lr.sigma_prime for lr in ref.layers]
    if len({sp.shape for sp in sps}) == 1:
        stacked = torch.stack(sps)  # (d, B, n)
        units, log_peak = _scaled_sigma_prime(stacked)
        active = (stacked != 0).sum(dim=2)  # stays on the host: rank bounds are read there
        return list(units.to(device=device, dtype=precision)), list(log_peak.to(device)), list(active)
    out = [_scaled_sigma_prime(sp) for sp in sps]
    return (
        [u.to(device=device, dtype=precision) for u, _ in out],
        [lp.to(device) for _, lp in out],
        [(sp != 0).sum(dim=1) for sp in sps],
    )


def _svd_stats(jac_prod: Tensor, fro: Tensor) -> tuple[Tensor, Tensor]:
    """ln(σ_max/‖P‖_F) and σ_min/σ_max from svdvals in float64."""
    sv = torch.linalg.svdvals(jac_prod.double())  # (B, min(n_d, n_t)), descending
    top = torch.where(sv[:, 0] > 0, sv[:, 0], torch.ones_like(sv[:, 0]))
    return torch.log(sv[:, 0] / fro.double()), sv[:, -1] / top


def _svd_summary(
    log_smax_rel: Tensor, rel_min: Tensor, log_scale: Tensor, resolution: float
) -> tuple[float, float, float, str]:
    """log10 σ_max, log10 σ_min, log10 κ and the σ_min status from one layer's svdvals (batch means).

    Below `resolution`·σ_max the formed product does not resolve σ_min: the value is then an upper
    bound on σ_min (and κ a lower bound).
    """
    log10_smax = _mean_log10(log_smax_rel + log_scale)
    unresolved = rel_min < resolution
    rel = torch.where(unresolved, torch.full_like(rel_min, resolution), rel_min)
    log10_cond = _mean_log10(-torch.log(rel))
    status = "upper_bound" if bool(unresolved.any()) else "resolved"
    return log10_smax, log10_smax - log10_cond, log10_cond, status


def estimate_chain(
    spec: ModelSpec, weights: list[Tensor], ref: Reference, precision: torch.dtype, device: torch.device
) -> ChainResult:
    widths, d = spec.widths, spec.depth
    n_d, batch = widths[-1], spec.batch_size
    if d == 1:
        return ChainResult([_identity_stats(n_d)], "estimate")
    k = min(spec.jacobian.probes, n_d)  # n_d orthonormal probes are the identity: exact
    steps = spec.jacobian.power_iterations
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 1)
    probes = _orthogonal_probes(batch, k, n_d, gen).to(device=device, dtype=precision)  # (B, k, n_d)
    sp_units, log_peaks, active = _prepare_sigma_prime(ref, precision, device)
    rank_bounds = _rank_bounds(active, widths)
    ws = [w.to(device=device, dtype=precision) for w in weights]
    u = _orthogonal_probes(batch, min(BLOCK, n_d), n_d, gen).to(device=device, dtype=precision)  # (B, r, n_d)
    peaks_above = torch.zeros(batch, dtype=torch.float64, device=device)  # Σ ln max σ' over the layers above
    log_scale = torch.zeros(batch, dtype=torch.float64, device=device)
    stats: list[JacobianStats] = [_identity_stats(n_d)]
    carried: _Carried | None = None
    for t in range(d, 1, -1):  # the products P_{t-1}
        n_t, n_prev = ws[t - 1].shape
        probes = (probes * sp_units[t - 1][:, None, :]).reshape(batch * k, n_t) @ ws[t - 1]
        probes, log_fro = _unit_rows(probes.reshape(batch, k, n_prev))
        peaks_above = peaks_above + log_peaks[t - 1]
        log_scale = log_scale + log_peaks[t - 1] + log_fro
        # ‖P‖_F² ≈ (n_d/k)·Σ_i ‖r_i P‖² for orthonormal r_i; the block has unit norm, so ‖P‖_F = e^s·√(n_d/k)
        log_fro_est = log_scale + 0.5 * math.log(n_d / k)
        log10_smax = None
        if steps > 0:  # power_iterations=0: Frobenius only (the cheap reruns that verify advice)
            carried, log_smax = _matrix_free_power(carried, u, sp_units, ws, t - 1, d, steps)
            log10_smax = _mean_log10(log_smax + peaks_above)
        rank_bound = rank_bounds[t - 2]
        stats.insert(
            0,
            JacobianStats(
                log10_spectral_norm=log10_smax,
                log10_min_singular_value=None,
                log10_condition_number=None,
                min_singular_value_status="rank_deficient" if rank_bound < min(n_d, n_prev) else "not_computed",
                rank_bound=rank_bound,
                method="estimate",
                **_frob_stats(log_fro_est, n_d),
            ),
        )
    return ChainResult(stats, "estimate")


def _rank_bounds(active: list[Tensor], widths: tuple[int, ...]) -> list[int]:
    """rank(P_t) ≤ min(n_d, n_t, active units of every layer above t), min over the batch; index t-1."""
    n_d = widths[-1]
    rank = torch.cummin(torch.stack(active[1:]).flip(0), dim=0).values.flip(0)  # (d-1, B): min over layers above
    return [min(int(r), n_d, widths[t]) for t, r in enumerate(rank.min(dim=1).values.tolist(), start=1)]


def _orthogonal_probes(batch: int, k: int, n_d: int, gen: torch.Generator) -> Tensor:
    """k ≤ n_d orthonormal rows per sample: the probes (E‖R P‖_F² = (k/n_d)‖P‖_F², with less variance
    than Gaussian rows) and the power iteration's starting block."""
    g = torch.randn(batch, n_d, k, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(g)  # (B, n_d, k)
    return q.transpose(1, 2).contiguous()


def _vjp_down(v: Tensor, sps: list[Tensor], ws: list[Tensor], top: int, bottom: int) -> tuple[Tensor, Tensor]:
    """Rows v (B, r, n_d) times P_bottom, renormalised per sample: (v̂, ln‖v P‖_F)."""
    log_s = torch.zeros(v.shape[0], dtype=torch.float64, device=v.device)
    for t in range(top, bottom, -1):
        v, ls = _unit_rows((v * sps[t - 1][:, None, :]) @ ws[t - 1])
        log_s = log_s + ls
    return v, log_s


def _jvp_up(v: Tensor, sps: list[Tensor], ws: list[Tensor], bottom: int, top: int) -> Tensor:
    """P_bottom times the rows of v (B, r, n_bottom), as rows (B, r, n_d), renormalised per sample."""
    for t in range(bottom + 1, top + 1):
        v, _ = _unit_rows((v @ ws[t - 1].T) * sps[t - 1][:, None, :])
    return v


@dataclass
class _Carried:
    """The matrix-free power iteration's basis U and its image U·P_t (unit Frobenius norm per sample, and the
    ln of that norm), carried from one product to the next."""

    basis: Tensor  # (B, r, n_d)
    image: Tensor  # (B, r, n_t)
    log_norm: Tensor  # (B,)


def _ritz_log(image: Tensor, log_norm: Tensor) -> Tensor:
    """ln of the Ritz estimate of σ_max from an orthonormal basis's image: a lower bound."""
    gram = torch.bmm(image, image.transpose(1, 2)).double()
    return log_norm + 0.5 * torch.log(torch.linalg.eigvalsh(gram)[:, -1].clamp_min(1e-300))


def _matrix_free_power(
    carried: _Carried | None, start: Tensor, sps: list[Tensor], ws: list[Tensor], t: int, d: int, steps: int
) -> tuple[_Carried, Tensor]:
    """Block power iteration on P_t = ∂h^d/∂h^t by VJP/JVP sweeps: (the carried state, ln σ_max Ritz estimate).

    A block of r rows costs about what one vector costs (each sweep reads every W once either way) and
    converges like (σ_{r+1}/σ_1)^k; the estimate is a lower bound on σ_max. The image U·P_{t+1} of the layer
    above extends to U·P_t through one more layer, so each product starts from the basis above with its
    first half-step already taken; the first product starts from `start` with at least COLD_STEPS steps.
    """
    if carried is None:
        basis, steps = start, max(steps, COLD_STEPS)
        image, log_norm = _vjp_down(basis, sps, ws, d, t)  # (B, r, n_t), U P / ‖U P‖_F
        log_smax = torch.full_like(log_norm, -math.inf)
    else:
        basis = carried.basis
        image, ls = _unit_rows((carried.image * sps[t][:, None, :]) @ ws[t])
        log_norm = carried.log_norm + ls
        log_smax = _ritz_log(image, log_norm)
    for _ in range(steps):
        basis = _orthonormal_rows(_jvp_up(image, sps, ws, t, d))  # (B, r, n_d)
        image, log_norm = _vjp_down(basis, sps, ws, d, t)
        log_smax = torch.maximum(log_smax, _ritz_log(image, log_norm))
    return _Carried(basis, image, log_norm), log_smax


def _orthonormal_rows(rows: Tensor) -> Tensor:
    """An orthonormal basis of the row space of each (r, n) block: shifted Cholesky QR.

    The r×r Gram matrix, its Cholesky factor L (float64, a relative shift of 1e-12 keeping it positive
    definite when power steps make rows nearly parallel) and rows ← L⁻¹·rows as one small batched
    GEMM: a few tiny ops, where a Householder QR per layer (cuSOLVER on a GPU) cost most of the chain's
    time. Without a host synchronisation: cholesky_ex reports failure in a tensor, which the shift
    makes unreachable.
    """
    wide = rows.double()
    gram = torch.bmm(wide, wide.transpose(-1, -2))  # (B, r, r)
    diag = gram.diagonal(dim1=-2, dim2=-1)
    diag.add_((1e-12 * diag.sum(-1, keepdim=True)).clamp_min_(1e-300))  # the shift, in place
    chol, _ = torch.linalg.cholesky_ex(gram)
    return torch.linalg.solve_triangular(chol, wide, upper=False).to(rows.dtype)  # L⁻¹·rows
