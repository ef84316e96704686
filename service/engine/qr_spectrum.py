"""σ_max and σ_min of every product P_t = ∂h^d/∂h^t beyond float64's relative resolution, in QR form.

The formed product (jacobian.exact_chain) holds P_t to float64's ~1e-16 relative to its largest
singular value, so svdvals resolve σ_min only down to ~1e-13·σ_max; below, σ_min is a bound. Here the
product is never formed: Pᵀ is kept as Q·D·R̂ with Q orthonormal, D diagonal (kept as ln|d| and signs)
and R̂ unit upper triangular (the standard QR method for Lyapunov exponents). Each layer multiplies
in A_tᵀ = W_tᵀ diag(σ'(z^t)):

    A_tᵀ Q = Q' R'  (QR),  R' = D' R̂'  ⇒  Pᵀ_{t-1} = Q' · (D' D) · (D⁻¹ R̂' D) R̂

so ln|diag| adds up layer by layer (ln|diag R| per layer) and R̂ stays bounded where the diagonal is
graded (|d_i| decreasing, which the iteration itself establishes). Then, with ℓ = ln|d|,

    σ_min(P) = e^{ℓ_min} / ‖R̂⁻¹ diag(e^{ℓ_min − ℓ})‖₂,   σ_max(P) = e^{ℓ_max} ‖diag(e^{ℓ − ℓ_max}) R̂‖₂,

both to float64's relative accuracy times cond(R̂), however far apart they are (1e120 and more).
Square products only (every hidden width equal to n_d); kept apart from jacobian.py's exact chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .network import Parameters
from .reference import Reference
from .spec import ModelSpec

Tensor = torch.Tensor
LN10 = math.log(10.0)


@dataclass
class ProductSpectrum:
    """Per layer t = 1..d-1 (index t-1), per sample: ln σ_max and ln σ_min of P_t (nan where not resolved)."""

    log_smax: list[Tensor]  # (B,)
    log_smin: list[Tensor]  # (B,)


def supports(spec: ModelSpec) -> bool:
    """Square products: every width n_1..n_d equal (P_t is n_d × n_t)."""
    return spec.depth > 1 and len(set(spec.widths[1:])) == 1


def _extremes(log_d: Tensor, r_hat: Tensor) -> tuple[Tensor, Tensor]:
    """ln σ_max, ln σ_min of D R̂ (D = diag(±e^ℓ)), per sample; the signs of D do not change singular values."""
    n = r_hat.shape[-1]
    l_max = log_d.amax(dim=1)
    l_min = log_d.amin(dim=1)
    top = torch.exp(log_d - l_max[:, None])[:, :, None] * r_hat  # rows scaled by e^{ℓ_i − ℓ_max} ≤ 1
    log_smax = l_max + torch.log(torch.linalg.matrix_norm(top, ord=2))
    eye = torch.eye(n, dtype=r_hat.dtype, device=r_hat.device).expand_as(r_hat)
    r_inv = torch.linalg.solve_triangular(r_hat, eye, upper=True, unitriangular=True)
    bottom = r_inv * torch.exp(l_min[:, None] - log_d)[:, None, :]  # columns scaled by e^{ℓ_min − ℓ_j} ≤ 1
    log_smin = l_min - torch.log(torch.linalg.matrix_norm(bottom, ord=2))
    return log_smax, log_smin


def product_spectrum(spec: ModelSpec, params: Parameters, ref: Reference) -> ProductSpectrum:
    """The QR-form accumulation from the top (P_d = I), float64, on the reference's device."""
    batch, n, d = spec.batch_size, spec.widths[-1], spec.depth
    dev = ref.top_grad_dir.device
    eye = torch.eye(n, dtype=torch.float64, device=dev)
    q = eye.expand(batch, n, n).clone()
    log_d = torch.zeros(batch, n, dtype=torch.float64, device=dev)
    sign_d = torch.ones(batch, n, dtype=torch.float64, device=dev)
    r_hat = eye.expand(batch, n, n).clone()
    log_smax: list[Tensor] = [eye[0, :0]] * (d - 1)  # placeholders, each set below
    log_smin: list[Tensor] = [eye[0, :0]] * (d - 1)
    for t in range(d, 1, -1):  # P_{t-1}ᵀ = W_tᵀ diag(σ'(z^t)) P_tᵀ
        sp = ref.layers[t - 1].sigma_prime  # (B, n)
        peak = sp.abs().amax(dim=1)
        sp_unit = sp / torch.where(peak > 0, peak, torch.ones_like(peak))[:, None]
        q, r1 = torch.linalg.qr(params.weights[t - 1].T @ (sp_unit[:, :, None] * q))
        d1 = torch.diagonal(r1, dim1=1, dim2=2)  # (B, n)
        safe = torch.where(d1 != 0, d1, torch.ones_like(d1))
        r1_hat = r1 / safe[:, :, None]  # unit diagonal (rows divided by their diagonal entry)
        # D⁻¹ R̂' D: entry (i, j) times s_j/s_i · e^{ℓ_j − ℓ_i}
        ratio = (sign_d[:, None, :] / sign_d[:, :, None]) * torch.exp(log_d[:, None, :] - log_d[:, :, None])
        r_hat = torch.triu(r1_hat * ratio) @ r_hat
        log_d = log_d + torch.log(d1.abs()) + torch.log(peak)[:, None]
        sign_d = sign_d * torch.sign(safe)
        # a sample whose product lost rank (σ' = 0 cuts it: ln|d| = −inf) stays unresolved here; the chain's
        # rank bound reports it
        ok = torch.isfinite(log_d).all(dim=1) & torch.isfinite(r_hat).flatten(1).all(dim=1)
        smax, smin = _extremes(
            torch.where(ok[:, None], log_d, torch.zeros_like(log_d)),
            torch.where(ok[:, None, None], r_hat, eye.expand_as(r_hat)),
        )
        log_smax[t - 2] = torch.where(ok, smax, torch.full_like(smax, math.nan))
        log_smin[t - 2] = torch.where(ok, smin, torch.full_like(smin, math.nan))
    return ProductSpectrum(log_smax, log_smin)
