"""The backpropagated Jacobian products P_t = ∂h^d/∂h^t = Π_{i=t}^{d-1} diag(σ'(z^{i+1})) W^{i+1}, formed (exact).

Built from the top: P_d = I, P_{t-1} = (P_t · diag(σ'(z^t))) W^t — one (B·n_d, n_t) @
(n_t, n_{t-1}) GEMM per layer, renormalised (`products`). The formed product gives the Frobenius norm (exact),
the spectral norm (warm-started power iteration on the formed product, or svdvals where they are computed),
σ_min and the condition number (svdvals on the layers `cost.svd_layers` picks), and a structural rank bound
(dead units). The matrix-free estimate is `estimate`; residual and normalised networks are `blockchain`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .cost import COLD_STEPS, svd_layers
from .products import (
    BLOCK,
    RESOLUTION,
    ChainResult,
    identity_stats,
    orthogonal_probes,
    power_steps,
    prepare_sigma_prime,
    ritz_gram,
    structural_rank_bounds,
    svd_stats,
    svd_summary,
)
from .reference import Reference
from .report import JacobianStats
from .spec import ModelSpec

Tensor = torch.Tensor
LN10 = math.log(10.0)

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
        return ChainResult([identity_stats(n_d)], "exact")
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 1)
    u = orthogonal_probes(batch, min(BLOCK, n_d), n_d, gen).to(device=device, dtype=precision)  # (B, r, n_d)
    sp_units, log_peaks, active = prepare_sigma_prime(ref, precision, device)
    rank_bounds = structural_rank_bounds(active, widths)
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
            self.u, self.v = power_steps(jac_prod, self.u, torch.bmm(self.u, jac_prod), max(self.steps, COLD_STEPS))
            self.grams[t] = ritz_gram(self.v)[:, None].expand(-1, 2, -1, -1)
        else:
            half = ritz_gram(self.v)  # the carried basis's own Ritz values: a lower bound as well
            self.u, self.v = power_steps(jac_prod, self.u, self.v, self.steps)
            self.grams[t] = torch.stack([half, ritz_gram(self.v)], dim=1)  # (B, 2, r, r)

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
            self.u, _ = power_steps(jac_prod, self.u, torch.bmm(self.u, jac_prod), max(self.steps, COLD_STEPS))
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
        first = ritz_gram(v)
        basis, v = power_steps(prods, basis, v, self.steps + 1)  # see the class docstring
        grams = torch.stack([first, ritz_gram(v)], dim=1).view(k, batch, 2, r, r)
        for j, (t, _) in enumerate(self.items):
            self.grams[t] = grams[j]
        self.u = basis.view(k, batch, r, n_d)[-1]
        self.items = []


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
        log_rel, rel_min = svd_stats(torch.cat([p for _, p, _ in self.items]), torch.cat([f for _, _, f in self.items]))
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
    svds: dict[int, tuple[Tensor, Tensor]] = {}
    if state.svds:  # one copy to the host for every layer's svdvals
        host = torch.stack([torch.stack(pair) for pair in state.svds.values()]).cpu()  # (L, 2, B)
        svds = {t: (h[0], h[1]) for t, h in zip(state.svds, host, strict=True)}
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
            smax, svd_min, svd_cond, svd_status = svd_summary(*svds[t], log_scale[t - 1], resolution)
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
    stats.append(identity_stats(n_d))
    return stats
